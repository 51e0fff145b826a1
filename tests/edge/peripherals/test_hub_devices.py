"""The hub on the simulated store: health of every device, audited drawer, scans, a count."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edge.peripherals.hub import DRAWER_OPENED, CountError, NotConfiguredError, PeripheralHub
from edge.peripherals.printer.preview import interpret
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.rfid.count import EVENT_KIND
from edge.peripherals.rfid.tag_field import make_gtin
from edge.peripherals.scanner.hid_simulator import keystrokes
from edge.peripherals.scanner.scan import Scan
from edge.peripherals.simulated_store import HID_SCANNER_PATH, shelf_tags

from .hub_harness import running_hub
from .waiting import until

GUARD_S = 30  # only against hangs; nothing asserts on time
SHELF = {make_gtin("0614141", 1): 30, make_gtin("0614141", 2): 20}


async def test_every_configured_device_reports_health(tmp_path: Path) -> None:
    async with asyncio.timeout(GUARD_S), running_hub(tmp_path) as run:
        await until(lambda: run.hub.health()["door-reader"]["connected"] is True)
        await until(lambda: any(k.startswith("Simulated Barcode") for k in run.hub.health()))
        job = await run.hub.print_test_page()
        await run.hub.require_printer().wait_for(job, lambda j: j.state == "printed")
        health = run.hub.health()
    assert set(health) == {
        "receipt-printer",
        "hand-scanner",
        "door-reader",
        f"Simulated Barcode Scanner ({HID_SCANNER_PATH})",
    }
    assert health["receipt-printer"]["connected"] is True
    assert health["receipt-printer"]["detail"] == {"paper": "ok"}
    assert {h["kind"] for h in health.values()} == {"printer", "scanner", "rfid"}
    json.dumps(health)  # goes on the state topic as is


async def test_drawer_open_is_journaled_before_the_kick(tmp_path: Path) -> None:
    async with asyncio.timeout(GUARD_S), running_hub(tmp_path) as run:
        opened = await run.hub.open_drawer(reason="no sale: change for a customer", by="E01")
        await run.hub.require_printer().wait_for(opened.job_id, lambda j: j.state == "printed")
        (printed,) = await run.store.printer.wait_for_jobs(1)
        (record,) = await run.ledger.read_records(opened.seq, 1)
    wire = json.loads(record.record)
    assert wire["kind"] == DRAWER_OPENED
    assert wire["body"] == {
        "drawer": "cash-drawer",
        "reason": "no sale: change for a customer",
        "by": "E01",
    }
    assert interpret(bytes(printed.data)).drawer_kicks == [0]


async def test_drawer_open_needs_a_reason_and_who(tmp_path: Path) -> None:
    async with asyncio.timeout(GUARD_S), running_hub(tmp_path) as run:
        with pytest.raises(ValueError, match="reason"):
            await run.hub.open_drawer(reason="", by="E01")
        assert run.ledger.last_seq == 0


async def test_scans_from_hid_and_serial_scanners_reach_the_kiosk(tmp_path: Path) -> None:
    heard: list[Scan] = []
    async with asyncio.timeout(GUARD_S), running_hub(tmp_path) as run:
        run.hub.add_scan_listener(heard.append)
        scans = run.hub.scans()
        watcher = run.hub.scanners
        assert watcher is not None
        await until(lambda: HID_SCANNER_PATH in watcher.active)
        run.store.hid_bus.send(HID_SCANNER_PATH, keystrokes("7610200000019"))
        first = await anext(scans)
        await until(lambda: run.hub.health()["hand-scanner"]["connected"] is True)
        await run.store.serial_scanner.scan("4006381333931")
        second = await anext(scans)
        await scans.aclose()  # type: ignore[attr-defined]
    assert (first.text, first.scanner) == ("7610200000019", "Simulated Barcode Scanner")
    assert (second.text, second.scanner) == ("4006381333931", "hand-scanner")
    assert heard == [first, second]


async def test_a_count_feeds_from_the_reader_and_commits_once(tmp_path: Path) -> None:
    tags = shelf_tags(SHELF, reads_per_second=None, seed=3)
    expected = {make_gtin("0614141", 1): 32, make_gtin("0614141", 2): 20}
    async with asyncio.timeout(GUARD_S), running_hub(tmp_path, tags=tags) as run:
        session = run.hub.start_count(expected=expected, session_id="C-7", location="front")
        with pytest.raises(CountError, match="still running"):
            run.hub.start_count(expected={})
        await until(lambda: session.distinct_tags == 50)
        reviewed = run.hub.stop_count("C-7")
        with pytest.raises(CountError, match="stopped"):
            run.hub.stop_count("C-7")
        done = await run.hub.commit_count("C-7")
        assert done.report == reviewed
        with pytest.raises(CountError, match="committed"):
            await run.hub.finish_count("C-7")
        (record,) = await run.ledger.read_records(done.seq, 1)
    assert session.totals() == SHELF
    assert {line.gtin: line.variance for line in done.report.lines} == {
        make_gtin("0614141", 1): -2,
        make_gtin("0614141", 2): 0,
    }
    assert json.loads(record.record)["kind"] == EVENT_KIND


async def test_an_empty_register_refuses_what_it_does_not_have(tmp_path: Path) -> None:
    class Journal:
        async def append_event(self, kind: str, body: object) -> int:
            raise AssertionError("nothing may be journaled")

    async with PeripheralHub(
        devices=RegisterDevices(), journal=Journal(), data_dir=tmp_path
    ) as hub:
        assert hub.health() == {}
        with pytest.raises(NotConfiguredError, match="cash drawer"):
            await hub.open_drawer(reason="x", by="y")
        with pytest.raises(NotConfiguredError, match="RFID"):
            hub.start_count(expected={})
        with pytest.raises(NotConfiguredError, match="printer"):
            await hub.print_test_page()
