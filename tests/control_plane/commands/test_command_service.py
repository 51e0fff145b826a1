"""The command service on both SQL stores: refusals, no broker, a timeout computed when read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.commands import service
from control_plane.devices.tables import devices
from control_plane.ingest.worker import IngestWorker
from protocols.broker_url import parse_broker_url
from protocols.messages import CommandResult
from tests.harness.cloud import Cloud

from .fleet_harness import new_device_id

pytestmark = pytest.mark.services
T0 = 1_800_000_000_000


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[Cloud]:
    """The store with tenant and store, no broker: nothing here needs one."""
    cloud = Cloud(database_url=database_url, broker_url="mqtt://127.0.0.1:1")
    await cloud.open()
    yield cloud
    await cloud.close()


def unconnected(engine: AsyncEngine) -> IngestWorker:
    """The real worker, never started: it has no connection to publish on."""
    return IngestWorker(engine=engine, broker=parse_broker_url("mqtt://127.0.0.1:1"))


async def test_without_a_broker_the_command_is_closed_as_not_sent(registry: Cloud) -> None:
    assert registry.engine is not None
    device_id = new_device_id()
    await registry.register(device_id)
    with pytest.raises(service.DeviceUnreachable):
        await service.send_command(
            registry.engine,
            publisher=unconnected(registry.engine),
            device_id=device_id,
            name="printer.test_page",
            args={},
        )
    (closed,) = await service.recent_commands(registry.engine, device_id=device_id)
    assert (closed.status, closed.ok) == ("done", False)
    assert closed.error is not None
    assert closed.error.startswith("not sent: not connected")


async def test_a_decommissioned_device_takes_no_commands(registry: Cloud) -> None:
    assert registry.engine is not None
    device_id = new_device_id()
    await registry.register(device_id)
    async with registry.engine.begin() as conn:
        await conn.execute(
            update(devices).where(devices.c.id == device_id).values(decommissioned_at=T0)
        )
    with pytest.raises(service.DeviceDecommissioned):
        await service.send_command(
            registry.engine,
            publisher=unconnected(registry.engine),
            device_id=device_id,
            name="drawer.open",
            args={"reason": "r", "by": "b"},
        )
    assert await service.recent_commands(registry.engine, device_id=device_id) == []


async def test_status_is_pending_then_timed_out_then_done_by_the_first_result(
    cloud: Cloud,
) -> None:
    assert cloud.engine is not None
    assert cloud.worker is not None
    engine, device_id = cloud.engine, new_device_id()
    await cloud.register(device_id)
    sent = await service.send_command(
        engine,
        publisher=cloud.worker,
        device_id=device_id,
        name="stock_count.start",
        args={"session_id": "C-9"},
        timeout_s=5,
        now_ms=T0,
    )

    async def status_at(now_ms: int) -> str:
        view = await service.get_command(
            engine, device_id=device_id, command_id=sent.id, now_ms=now_ms
        )
        return view.status

    assert await status_at(T0 + 5_000) == "pending"
    assert await status_at(T0 + 5_001) == "timed_out"

    answer = CommandResult(id=sent.id, ok=True, result={"session_id": "C-9", "expected_gtins": 5})
    assert await service.record_result(engine, device_id, answer) == "recorded"
    again = CommandResult(id=sent.id, ok=False, error="late duplicate")
    assert await service.record_result(engine, device_id, again) == "duplicate"
    assert await service.record_result(engine, new_device_id(), answer) == "unknown"
    done = await service.get_command(engine, device_id=device_id, command_id=sent.id, now_ms=T0)
    assert (done.status, done.ok, done.result, done.error) == (
        "done",
        True,
        {"session_id": "C-9", "expected_gtins": 5},
        None,
    )
