"""Peripheral health in the retained state over a real Mosquitto: out of paper, then paper back."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from edge.ledger import SaleDraft, SaleLine, Tender
from edge.peripherals.receipt_adapter import HubReceiptPrinter
from protocols.messages import State
from tests.edge.peripherals.hub_harness import running_hub
from tests.harness.services import Mosquitto

from .agent_harness import control_plane, new_device_id, running_agent

pytestmark = pytest.mark.services
GUARD_S = 30  # only against hangs


def printer_of(state: State) -> dict[str, object]:
    return state.peripherals.get("receipt-printer", {})


async def test_paper_out_shows_in_state_and_clears_when_the_job_prints(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S),
        running_hub(tmp_path) as run,
        control_plane(mosquitto.url, device_id) as cp,
        running_agent(
            mosquitto.url,
            device_id=device_id,
            hub=run.hub,
            journal=run.ledger,
        ),
    ):
        first = await cp.state(lambda s: "door-reader" in s.peripherals)
        assert {"receipt-printer", "hand-scanner"} <= set(first.peripherals)

        run.store.printer.paper = "out"
        line = SaleLine("4006381333931", "Pen", Decimal(1), 129, 129)
        draft = SaleDraft("s1", "EUR", (line,), (Tender("cash", 200),))
        sale = await run.ledger.record_sale(draft)  # the sale is booked, whatever the paper
        printer = HubReceiptPrinter(hub=run.hub, register_id="1")
        job_id = await printer.submit_text(
            "Pen  1.29\nTOTAL EUR 1.29\n", receipt_no=sale.receipt_no
        )
        out = await cp.state(lambda s: printer_of(s).get("error") is not None)
        assert out.peripherals["receipt-printer"]["error"] == "receipt-printer: out of paper"
        assert out.peripherals["receipt-printer"]["detail"] == {"paper": "out"}
        records = await run.ledger.read_records(1, 10)
        assert [json.loads(r.record)["kind"] for r in records] == ["sale.completed"]

        run.store.printer.paper = "ok"
        back = await cp.state(lambda s: printer_of(s).get("error") is None)
        service = run.hub.require_printer()
        job = await service.wait_for(job_id, lambda j: j.state == "printed")
    assert back.peripherals["receipt-printer"]["connected"] is True
    assert job.attempts >= 2
    assert len(run.store.printer.printed_jobs) == 1


async def test_agent_reconnects_after_a_broker_restart_and_serves_again(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S),
        running_hub(tmp_path) as run,
        running_agent(mosquitto.url, device_id=device_id, hub=run.hub, journal=run.ledger),
    ):
        async with control_plane(mosquitto.url, device_id) as cp:
            await cp.state(lambda s: "receipt-printer" in s.peripherals)
        await asyncio.to_thread(mosquitto.restart)  # the broker keeps nothing (persistence off)
        async with control_plane(mosquitto.url, device_id) as cp:
            # only a reconnected agent can have published this: it subscribed to cmd first
            again = await cp.state(lambda s: "receipt-printer" in s.peripherals)
            page = await cp.call("printer.test_page")
    assert set(again.peripherals) == set(run.hub.health())
    assert page.ok
