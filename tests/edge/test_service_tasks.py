"""The edge's one way to run a service's background tasks: none outlives it, none dies unseen."""

from __future__ import annotations

import asyncio

import pytest

from edge.service_tasks import ServiceTasks


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
