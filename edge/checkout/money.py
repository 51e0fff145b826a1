"""Money as integer minor units, Decimal only at the edges.

How it works: every amount inside the checkout is an ``int`` of the currency's minor unit (Rappen,
cents). Decimals appear where people type or read amounts and where rates multiply amounts; every
step from a Decimal back to minor units names its ``RoundingRule``, so no rounding is implicit.
Cash rounding (0.05 CHF, 0.10 SEK …) is a separate, explicit step on the cash part of a payment.
Floats never appear: ``to_minor`` refuses them.
"""

from __future__ import annotations

import decimal
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from protocols.limits import CURRENCY_PATTERN


class RoundingRule(enum.Enum):
    """Named rounding rules; the value is the ``decimal`` constant that implements it."""

    HALF_UP = decimal.ROUND_HALF_UP  # commercial rounding, away from zero on .5
    HALF_EVEN = decimal.ROUND_HALF_EVEN  # banker's rounding
    DOWN = decimal.ROUND_DOWN  # towards zero; used where we must never pay out too much


@dataclass(frozen=True, slots=True)
class Currency:
    """A currency with its minor-unit exponent and the smallest coin the till hands out."""

    code: str
    exponent: int = 2
    cash_increment_minor: int = 1

    def __post_init__(self) -> None:
        if not (0 <= self.exponent <= 4) or self.cash_increment_minor < 1:
            raise ValueError(f"bad currency definition {self!r}")
        if not re.fullmatch(CURRENCY_PATTERN, self.code):  # the cloud stores 3 characters
            msg = f"currency code {self.code!r} is not 3 capital letters (ISO 4217: EUR, CHF)"
            raise ValueError(msg)


CHF = Currency("CHF", 2, 5)
EUR = Currency("EUR", 2, 1)
SEK = Currency("SEK", 2, 100)
USD = Currency("USD", 2, 1)
JPY = Currency("JPY", 0, 1)
KWD = Currency("KWD", 3, 5)  # three decimals (fils); 5-fils coins


def round_to_int(value: Decimal, rule: RoundingRule) -> int:
    """Round a Decimal to an integer by a named rule."""
    return int(value.to_integral_value(rounding=rule.value))


def to_minor(amount: Decimal | str | int, currency: Currency, rule: RoundingRule) -> int:
    """Major units (``Decimal("12.35")``) to minor units (``1235``), rounding by ``rule``."""
    if isinstance(amount, float):  # a float amount is a bug upstream, never a value
        raise TypeError("money must not be a float")
    return round_to_int(Decimal(amount).scaleb(currency.exponent), rule)


def from_minor(minor: int, currency: Currency) -> Decimal:
    """Minor units to an exact Decimal in major units with the currency's exponent."""
    return Decimal(minor).scaleb(-currency.exponent).quantize(Decimal(1).scaleb(-currency.exponent))


def format_minor(minor: int, currency: Currency, *, grouping: bool = False) -> str:
    """``1235`` → ``"12.35"`` (JPY ``1235`` → ``"1235"``, KWD → ``"1.235"``).

    Every amount a person reads (receipts, reports, the kiosk) is formatted here, so the number
    of decimals always comes from the currency's exponent. ``grouping`` adds thousands
    separators (``1,234.50``); the receipt adds the currency code where it wants it.
    """
    amount = from_minor(minor, currency)
    return f"{amount:,f}" if grouping else f"{amount:f}"


def format_amount(
    amount: Decimal,
    currency: Currency,
    *,
    rule: RoundingRule = RoundingRule.HALF_EVEN,
    grouping: bool = False,
) -> str:
    """A major-unit Decimal shown like :func:`format_minor`, rounded by ``rule`` if it must be.

    For values that arrive as Decimals (the printer's typed receipt): an amount finer than the
    currency's minor unit (a computed tax share) is rounded by a named rule, never by format.
    """
    return format_minor(to_minor(amount, currency, rule), currency, grouping=grouping)


def multiply(minor: int, factor: Decimal, rule: RoundingRule) -> int:
    """``minor × factor`` rounded back to minor units (unit price × kg, amount × rate)."""
    return round_to_int(Decimal(minor) * factor, rule)


def cash_round(minor: int, increment_minor: int, rule: RoundingRule = RoundingRule.HALF_UP) -> int:
    """Round an amount to the cash increment (5 Rappen → 0.05), e.g. 1232 → 1230, 1233 → 1235."""
    if increment_minor == 1:
        return minor
    steps = round_to_int(Decimal(minor) / Decimal(increment_minor), rule)
    return steps * increment_minor


def allocate(total_minor: int, weights: Sequence[int]) -> list[int]:
    """Split ``total_minor`` in proportion to ``weights``, exactly, by largest remainder.

    The shares always sum to ``total_minor``; ties in the remainder go to the earlier weight so
    the result is deterministic. Used for basket discounts, per-total tax and partial refunds.
    """
    if not weights:
        if total_minor:
            raise ValueError("cannot allocate a non-zero amount over no weights")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        # nothing to be proportional to: spread evenly, still exact
        weights = [1] * len(weights)
        weight_sum = len(weights)
    sign = -1 if total_minor < 0 else 1
    magnitude = abs(total_minor)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    left = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return [sign * f for f in floors]
