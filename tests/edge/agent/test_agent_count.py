"""A remote stock count over a real Mosquitto: LLRP simulator with 2,000 tags, ledger on-hand."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from edge.ledger import Ledger, SaleDraft, SaleLine, Tender
from edge.peripherals.rfid.count import EVENT_KIND
from edge.peripherals.rfid.tag_field import make_gtin
from edge.peripherals.simulated_store import shelf_tags
from edge.stock.on_hand import OnHandProjection
from tests.edge.peripherals.hub_harness import running_hub
from tests.edge.peripherals.waiting import until
from tests.harness.services import Mosquitto

from .agent_harness import control_plane, new_device_id, running_agent

pytestmark = pytest.mark.services
GUARD_S = 60  # only against hangs
GTINS = [make_gtin("0614141", item) for item in range(1, 21)]
ON_SHELF = dict.fromkeys(GTINS, 100)  # 2,000 tagged items


async def book_history(ledger: Ledger) -> None:
    """Last count: 100 of each, but 102 of GTIN 1; then sales and a return."""
    baseline = {g: 102 if g == GTINS[1] else 100 for g in GTINS}
    lines = [{"gtin": g, "expected": n, "counted": n, "variance": 0} for g, n in baseline.items()]
    await ledger.append_event(EVENT_KIND, {"session_id": "C-0", "lines": lines})

    def sale(sale_id: str, gtin: str, quantity: int) -> SaleDraft:
        line = SaleLine(gtin, "item", Decimal(quantity), 100, 100 * quantity)
        return SaleDraft(sale_id, "EUR", (line,), (Tender("cash", 100 * quantity),))

    await ledger.record_sale(sale("s1", GTINS[0][1:], 2))  # sold as EAN-13
    await ledger.record_sale(sale("s2", GTINS[2], 3))
    await ledger.append_event(
        "sale.returned",
        {"kind": "sale.returned", "lines": [{"item_id": GTINS[3], "quantity": "1"}]},
    )


async def test_remote_count_reports_totals_and_variance_and_commits(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    device_id = new_device_id()
    tags = shelf_tags(ON_SHELF, reads_per_second=None, seed=11)
    async with (
        asyncio.timeout(GUARD_S),
        running_hub(tmp_path, tags=tags) as run,
        control_plane(mosquitto.url, device_id) as cp,
    ):
        await book_history(run.ledger)
        async with running_agent(
            mosquitto.url, device_id=device_id, hub=run.hub, journal=run.ledger
        ):
            started = await cp.call("stock_count.start", session_id="C-1", location="shop floor")
            assert started.ok, started.error
            assert started.result == {"session_id": "C-1", "expected_gtins": 20}
            session = run.hub.count("C-1")
            await until(lambda: session.distinct_tags == 2000)
            stopped = await cp.call("stock_count.stop", session_id="C-1")
        records = await run.ledger.read_records(run.ledger.last_seq, 1)
        after = await OnHandProjection(journal=run.ledger).refresh()
    assert stopped.ok, stopped.error
    report = stopped.result["report"]
    assert {line["gtin"]: line["counted"] for line in report["lines"]} == ON_SHELF
    assert {line["gtin"]: line["variance"] for line in report["lines"] if line["variance"]} == {
        GTINS[0]: +2,  # 100 - 2 sold = 98 expected, 100 counted
        GTINS[1]: -2,  # 102 expected, 100 counted
        GTINS[2]: +3,  # 100 - 3 sold = 97 expected
        GTINS[3]: -1,  # 100 + 1 returned = 101 expected
    }
    assert (report["counted_total"], report["expected_total"]) == (2000, 2000 - 2 + 2 - 3 + 1)
    (committed,) = records
    wire = json.loads(committed.record)
    assert (wire["seq"], wire["kind"]) == (stopped.result["seq"], EVENT_KIND)
    assert wire["body"] == report
    assert after == ON_SHELF  # the count is the new baseline
