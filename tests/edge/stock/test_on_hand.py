"""Expected on-hand from a real ledger: last count per GTIN, then sales, returns, receipts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from edge.ledger import Ledger, SaleDraft, SaleLine, Tender
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.catalog_store import StoredCatalog, write_catalog
from edge.pos.store_config import DEMO_CATALOG
from edge.stock.movements import (
    STOCK_ADJUSTED,
    STOCK_COUNT_COMMITTED,
    STOCK_RECEIVED,
    adjusted_body,
    received_body,
    whole_quantity,
)
from edge.stock.on_hand import CatalogGtins, OnHandProjection, catalog_gtins, expected_on_hand

COLA = "5000112637922"  # EAN-13 as the simulated register sells it
PEN = "4006381333931"
COLA14, PEN14 = "0" + COLA, "0" + PEN
MILK_ID, MILK14 = "I00001", "07610200000019"  # the demo catalog's item id and its GTIN


def count_body(counted: dict[str, int]) -> dict[str, object]:
    lines = [{"gtin": g, "expected": 0, "counted": n, "variance": n} for g, n in counted.items()]
    return {"session_id": "C", "location": "", "lines": lines}


def sale(sale_id: str, *lines: tuple[str, str]) -> SaleDraft:
    sold = tuple(SaleLine(sku, sku, Decimal(q), 100, int(Decimal(q) * 100)) for sku, q in lines)
    total = sum(line.amount_minor for line in sold)
    return SaleDraft(sale_id, "EUR", sold, (Tender("cash", total + 100),))


async def test_last_count_is_the_baseline_and_movements_after_it_count(tmp_path: Path) -> None:
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await ledger.record_sale(sale("before-count", (COLA, "7")))  # superseded by the count
        await ledger.append_event(STOCK_COUNT_COMMITTED, count_body({COLA14: 50, PEN14: 10}))
        await ledger.record_sale(sale("s1", (COLA, "3"), (PEN, "1")))
        await ledger.record_sale(sale("s2", (COLA, "2"), ("cash-rounding", "1")))
        await ledger.record_sale(sale("weighed", ("2012345002500", "0.532")))
        await ledger.append_event("sale.returned", {"lines": [{"item_id": COLA, "quantity": "1"}]})
        await ledger.append_event(STOCK_RECEIVED, received_body({PEN: 24}, reference="DN-1"))
        await ledger.append_event(STOCK_ADJUSTED, adjusted_body({COLA: -2}, reason="damaged"))
        projection = OnHandProjection(journal=ledger)
        first = await projection.refresh()
        assert first == {COLA14: 50 - 3 - 2 + 1 - 2, PEN14: 10 - 1 + 24}
        assert projection.skipped == {"not_a_gtin": 1, "not_whole_units": 1}

        await ledger.append_event(STOCK_COUNT_COMMITTED, count_body({PEN14: 30}))
        await ledger.record_sale(sale("s3", (PEN, "4")))
        assert await projection.refresh() == {COLA14: 44, PEN14: 26}
        assert projection.seq == ledger.last_seq
        assert await expected_on_hand(ledger) == {COLA14: 44, PEN14: 26}


def _walked(tmp_path: Path) -> Mapping[str, str]:
    return catalog_gtins(load_snapshot_file(DEMO_CATALOG))


def _asked_of_the_stored_catalog(tmp_path: Path) -> Mapping[str, str]:
    """As the register composes it: its catalog.db asked per item, never walked at start."""
    write_catalog(tmp_path / "catalog.db", load_snapshot_file(DEMO_CATALOG))
    return CatalogGtins(StoredCatalog(tmp_path / "catalog.db"))


@pytest.mark.parametrize("gtins_of", [_walked, _asked_of_the_stored_catalog])
async def test_item_ids_map_to_gtins_through_the_catalog(
    tmp_path: Path, gtins_of: Callable[[Path], Mapping[str, str]]
) -> None:
    mapping = gtins_of(tmp_path)
    assert mapping[MILK_ID] == MILK14
    assert mapping.get("I-unknown") is None
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await ledger.append_event(STOCK_COUNT_COMMITTED, count_body({MILK14: 12}))
        await ledger.record_sale(sale("s1", (MILK_ID, "2"), ("I-unknown", "1")))
        projection = OnHandProjection(journal=ledger, item_gtins=mapping)
        assert await projection.refresh() == {MILK14: 10}
        assert projection.skipped == {"not_a_gtin": 1}


@pytest.mark.parametrize(
    ("raw", "units"),
    [
        pytest.param("3", 3, id="string"),
        pytest.param("2.000", 2, id="integral-decimal"),
        pytest.param(4, 4, id="int"),
        pytest.param("0.5", None, id="weighed"),
        pytest.param("NaN", None, id="nan"),
        pytest.param("x", None, id="garbage"),
        pytest.param(True, None, id="bool"),
        pytest.param(1.0, None, id="float"),
    ],
)
def test_whole_quantity(raw: object, units: int | None) -> None:
    assert whole_quantity(raw) == units


def test_bodies_refuse_what_the_projection_could_not_read() -> None:
    with pytest.raises(ValueError, match="not a valid GTIN"):
        received_body({"I00001": 1})
    with pytest.raises(ValueError, match="needs a reason"):
        adjusted_body({COLA: 1}, reason="")
