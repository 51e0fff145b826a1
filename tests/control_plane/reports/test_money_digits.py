"""Report tables show money with the ISO 4217 digits of their stores' currency."""

from __future__ import annotations

import pytest

from control_plane.reports.facts import StoreInfo
from control_plane.reports.figures import exponent_of_stores
from control_plane.reports.tables import money_text


def _store(currency: str) -> StoreInfo:
    return StoreInfo(id=f"s-{currency}", tenant_id="t", name="S", timezone="UTC", currency=currency)


@pytest.mark.parametrize(
    ("currencies", "text"),
    [
        pytest.param(["EUR"], "12.90", id="EUR"),
        pytest.param(["JPY"], "1290", id="JPY"),
        pytest.param(["KWD"], "1.290", id="KWD"),
        pytest.param(["EUR", "JPY"], "1290", id="mixed-take-the-fewest"),
        pytest.param([], "12.90", id="no-store"),
    ],
)
def test_a_report_amount_has_its_stores_digits(currencies: list[str], text: str) -> None:
    assert money_text(1290, exponent_of_stores(_store(c) for c in currencies)) == text
