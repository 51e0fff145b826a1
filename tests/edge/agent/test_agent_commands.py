"""Commands over a real Mosquitto: drawer and test page work; bad ones get error results."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from edge.peripherals.hub import DRAWER_OPENED
from protocols.messages import Command
from tests.edge.peripherals.hub_harness import running_hub
from tests.harness.services import Mosquitto

from .agent_harness import control_plane, new_device_id, running_agent

pytestmark = pytest.mark.services
GUARD_S = 30  # only against hangs


def rejected(device_id: str, reason: str) -> float:
    labels = {"device_id": device_id, "reason": reason}
    return REGISTRY.get_sample_value("storefleet_agent_commands_rejected_total", labels) or 0.0


async def test_drawer_open_and_test_page_by_command(tmp_path: Path, mosquitto: Mosquitto) -> None:
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
        command = Command(id="d-1", name="drawer.open", args={"reason": "float check", "by": "op7"})
        await cp.send(command)
        opened = await cp.result("d-1")
        await cp.send(command)  # QoS 1 may deliver twice: the drawer opens once
        again = await cp.result("d-1")
        page = await cp.call("printer.test_page")
        service = run.hub.require_printer()
        await service.wait_for(page.result["job_id"], lambda j: j.state == "printed")
        await service.wait_for(opened.result["job_id"], lambda j: j.state == "printed")
        records = await run.ledger.read_records(1, 10)
    assert opened.ok, opened.error
    assert again == opened
    (drawer,) = [json.loads(r.record) for r in records]
    assert (drawer["seq"], drawer["kind"]) == (opened.result["seq"], DRAWER_OPENED)
    assert drawer["body"] == {"drawer": "cash-drawer", "reason": "float check", "by": "op7"}
    assert page.ok


@pytest.mark.parametrize(
    ("payload", "command_id", "reason", "error"),
    [
        pytest.param(b"\xff not json", "", "malformed", "not JSON", id="not-json"),
        pytest.param(
            b'{"schema":"sf.cmd","v":2,"id":"v2","name":"drawer.open"}',
            "v2",
            "unsupported_version",
            "version 2 is not supported",
            id="future-version",
        ),
        pytest.param(
            b'{"schema":"sf.cmd","v":1,"id":"x1","name":"reboot.now"}',
            "x1",
            "unknown_command",
            "unknown command 'reboot.now'",
            id="unknown-command",
        ),
        pytest.param(
            b'{"schema":"sf.cmd","v":1,"id":"x2","name":"drawer.open","args":{"by":"op"}}',
            "x2",
            "invalid_args",
            "drawer.open: reason: Field required",
            id="missing-arg",
        ),
        pytest.param(
            b'{"schema":"sf.cmd","v":1,"id":"x3","name":"stock_count.stop",'
            b'"args":{"session_id":"C","force":true}}',
            "x3",
            "invalid_args",
            "force: Extra inputs are not permitted",
            id="unknown-arg",
        ),
    ],
)
async def test_bad_commands_get_an_error_result_and_are_counted(
    tmp_path: Path,
    mosquitto: Mosquitto,
    payload: bytes,
    command_id: str,
    reason: str,
    error: str,
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
        await cp.send(payload)
        refused = await cp.result(command_id)
        still_serving = await cp.call("printer.test_page")
    assert not refused.ok
    assert refused.error is not None
    assert error in refused.error
    assert rejected(device_id, reason) == 1
    assert still_serving.ok
    assert run.ledger.last_seq == 0


async def test_refusals_of_the_hub_are_error_results(tmp_path: Path, mosquitto: Mosquitto) -> None:
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
        unknown = await cp.call("stock_count.stop", session_id="never-started")
        first = await cp.call("stock_count.start", session_id="C-1")
        second = await cp.call("stock_count.start", session_id="C-2")
    assert (unknown.ok, unknown.error) == (False, "no count never-started")
    assert first.ok
    assert (second.ok, second.error) == (False, "count C-1 is still running")
