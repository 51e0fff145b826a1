"""The sales API's decimal totals carry the digits of each row's currency, not always two.

``/api/sales`` and ``/api/sales/totals`` build every answer row with these functions.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from control_plane.sales.router import sale_out, store_total_out

SALE = {
    "device_id": "acme-01-r1",
    "seq": 3,
    "sale_id": "sale-3",
    "store_id": "acme-01",
    "tenant_id": "acme",
    "receipt_no": 3,
    "total_minor": 1290,
    "ts": 1_700_000_000_000,
}


@pytest.mark.parametrize(
    ("currency", "total"),
    [
        pytest.param("EUR", "12.90", id="EUR"),
        pytest.param("JPY", "1290", id="JPY"),
        pytest.param("KWD", "1.290", id="KWD"),
    ],
)
def test_a_sale_and_a_store_total_read_in_their_currency(currency: str, total: str) -> None:
    sale = sale_out(SALE | {"currency": currency})
    # PostgreSQL's SUM answers a Decimal: still an integer of minor units in the answer.
    row = {"store_id": "acme-01", "currency": currency, "sales": 2, "total_minor": Decimal(1290)}
    store = store_total_out(row)
    assert (sale.total, sale.total_minor) == (total, 1290)
    assert (store.total, store.total_minor) == (total, 1290)
