"""Commands that need the register, end to end: broker → agent process → socket → register.

Real processes (``python -m edge.agent`` starting the register it supervises) and real devices'
protocols: the receipt printer and its drawer are the raw-TCP ESC/POS simulator, the RFID reader
the LLRP simulator, each on the port the register's settings name, as a store's network devices
would be. What each command did is checked on the device (the paper, the drawer pulse, the tags
counted) and in the register's journal.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge.peripherals.printer.preview import interpret
from edge.peripherals.printer.simulator import PrinterSimulator
from edge.peripherals.rfid.llrp_simulator import LlrpReaderSimulator
from edge.peripherals.rfid.tag_field import TagField, make_gtin, sgtin_population
from protocols.messages import CommandResult
from tests.harness.services import Mosquitto, wait_until

from .agent_harness import control_plane, new_device_id
from .agent_process import AgentProcess

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 120  # only against hangs
SHELF = {make_gtin("0614141", item): 5 for item in range(1, 4)}  # 15 tagged items


def journal(path: Path) -> list[dict[str, Any]]:
    """The register's journal records (seq, kind, body), read-only while it runs."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT record FROM journal ORDER BY seq").fetchall()
    return [json.loads(row[0]) for row in rows]


async def test_test_page_drawer_and_stock_count_pass_through_the_agent(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = new_device_id()
    field = TagField(epcs=sgtin_population(SHELF), seed=3)  # every tag seen in every round
    async with (
        PrinterSimulator() as printer,
        LlrpReaderSimulator(field=field) as reader,
    ):
        appliance = AgentProcess(
            workdir=tmp_path / "appliance",
            device_id=device_id,
            broker_url=mosquitto.url,
            register={
                "peripherals": {
                    "printer": {"connector": "network", "host": "127.0.0.1", "port": printer.port},
                    "drawer": {"pin": 2},
                    "rfid": [
                        {"name": "door", "kind": "llrp", "host": "127.0.0.1", "port": reader.port}
                    ],
                }
            },
        )
        async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device_id) as cp:
            appliance.start()
            try:

                async def ready() -> bool:
                    health = await appliance.healthz()
                    return health is not None and bool(health["ready"])

                await wait_until(ready, timeout=GUARD_S, what="the register ready")
                page = await cp.call("printer.test_page")
                (paper,) = await printer.wait_for_jobs(1)
                drawer = await cp.call("drawer.open", reason="float check", by="op7")
                await printer.wait_for_jobs(2)
                started = await cp.call("stock_count.start", session_id="C-1", location="door")
                before = reader.reports_sent
                await wait_until(  # a few whole inventory rounds reach the register
                    lambda: reader.reports_sent >= before + 3, timeout=GUARD_S, what="tag reports"
                )
                stopped = await cp.call("stock_count.stop", session_id="C-1")
                unknown = await cp.call("stock_count.stop", session_id="C-nope")
                records = journal(appliance.data_dir / "ledger.db")
            finally:
                code = appliance.stop()
    assert code == 0
    assert isinstance(page, CommandResult)
    assert page.ok, page.error
    assert any("test" in line.lower() for line in interpret(bytes(paper.data)).text_lines)
    assert drawer.ok, drawer.error
    kick = printer.printed_jobs[1]
    assert interpret(bytes(kick.data)).drawer_kicks == [0]  # ESC p 0: connector pin 2
    assert started.ok, started.error
    assert started.result["session_id"] == "C-1"
    assert stopped.ok, stopped.error
    report = stopped.result["report"]
    assert {line["gtin"]: line["counted"] for line in report["lines"]} == SHELF
    assert report["counted_total"] == sum(SHELF.values())
    assert (unknown.ok, bool(unknown.error)) == (False, True)
    by_seq = {record["seq"]: record for record in records}
    assert by_seq[drawer.result["seq"]]["body"] == {
        "drawer": "cash-drawer",
        "reason": "float check",
        "by": "op7",
    }
    assert by_seq[stopped.result["seq"]]["body"] == report
