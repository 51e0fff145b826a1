"""The one way to run a service's background tasks: none outlives it, none dies unseen.

(Supervised tasks, restarted when they die: tests/control_plane/test_supervision.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest

from mqttlink.tasks import ServiceTasks


async def test_leaving_cancels_and_awaits_every_task_even_one_spawned_later() -> None:
    tasks = ServiceTasks("printer")
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    await tasks.start()
    first = tasks.spawn(forever("worker"), name="worker")
    await asyncio.sleep(0)
    later = tasks.spawn(forever("reader"), name="reader")  # as a scanner watcher adds devices
    await asyncio.sleep(0)
    await tasks.stop()
    assert sorted(ended) == ["reader", "worker"]
    assert (first.cancelled(), later.cancelled(), first.get_name()) == (True, True, "worker")


async def test_a_task_that_dies_cancels_its_owner_and_its_error_comes_out_of_stop() -> None:
    tasks = ServiceTasks("scanner")

    async def broken() -> None:
        raise OSError("device unplugged mid-read")

    await tasks.start()
    tasks.spawn(broken(), name="scanner-read")
    with pytest.raises(asyncio.CancelledError):  # the owner hears of it at once
        await asyncio.sleep(30)
    with pytest.raises(ExceptionGroup) as caught:
        await tasks.stop()
    assert caught.group_contains(OSError, match="unplugged")


async def test_a_task_cannot_start_before_the_service_is_entered_nor_it_be_left_twice() -> None:
    tasks = ServiceTasks("rfid reader")
    with pytest.raises(RuntimeError, match="rfid reader is not running"):
        tasks.spawn(asyncio.sleep(0), name="session")
    with pytest.raises(RuntimeError, match="left without being entered"):
        await tasks.stop()
    await tasks.start()
    with pytest.raises(RuntimeError, match="already running"):
        await tasks.start()
    await tasks.stop()


async def test_a_task_that_dies_is_logged_by_name_and_stops_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mqttlink.tasks")
    reached_the_end: list[bool] = []

    async def broken() -> None:
        raise OSError("broker socket closed")

    async def register() -> None:
        async with asyncio.timeout(30), ServiceTasks("register 1") as tasks:
            tasks.spawn(broken(), name="replicator-r1")
            await asyncio.Event().wait()  # the body is the register serving: it is stopped
            reached_the_end.append(True)

    with pytest.raises(ExceptionGroup) as caught:
        await register()
    assert caught.group_contains(OSError, match="socket closed")
    assert not reached_the_end
    assert [r.getMessage() for r in caplog.records if r.name == "mqttlink.tasks"] == [
        "register 1: task replicator-r1 died (OSError: broker socket closed); stopping register 1"
    ]


async def test_a_task_that_finishes_its_work_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mqttlink.tasks")
    async with asyncio.timeout(30), ServiceTasks("kiosk") as tasks:
        done = tasks.spawn(asyncio.sleep(0, result="ready"), name="kiosk-ready")
        assert await done == "ready"
        serving = tasks.spawn(asyncio.Event().wait(), name="kiosk-http")
        await asyncio.sleep(0)
    assert serving.cancelled()
    assert not [r for r in caplog.records if r.name == "mqttlink.tasks"]
