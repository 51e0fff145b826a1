"""The stock domain's refusals. An unknown store is the registry's ``StoreNotFound``.

StockError
└── BadThreshold   422  a low-stock threshold that is not a whole number of units ≥ 0
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from control_plane.problems import DomainError


class StockError(DomainError):
    """A stock request was refused."""

    reason = "stock_error"


@dataclass(eq=False, kw_only=True)
class BadThreshold(StockError):  # noqa: N818 - named in the domain's words
    """A threshold below zero."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "stock_bad_threshold"
    advice = "send low_at as whole units, 0 or more (null removes the threshold)"
    message = "low_at {low_at} is not a number of units"

    low_at: int
