"""Background tasks run supervised: a death is counted, logged once, and the task runs again."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest
from prometheus_client import REGISTRY

from control_plane.supervision import background_tasks
from mqttlink.backoff import Backoff
from tests.harness.services import wait_until

QUICK = functools.partial(Backoff, initial=0.01, cap=0.02, healthy_s=60)


def deaths(task: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_background_task_deaths_total", {"task": task}) or 0.0
    )


class Flaky:
    """Dies ``times`` times with a real error, then serves until cancelled."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.started = 0
        self.serving = asyncio.Event()

    async def run(self) -> None:
        self.started += 1
        if self.started <= self.times:
            raise RuntimeError(f"crash number {self.started}")
        self.serving.set()
        await asyncio.Event().wait()


async def test_a_task_that_dies_is_restarted_counted_and_logged_once_per_death(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mqttlink.tasks")
    flaky = Flaky(times=3)
    before = deaths("flaky")
    async with asyncio.timeout(30), background_tasks(QUICK) as tasks:
        state = tasks.supervise("flaky", flaky.run)
        await flaky.serving.wait()
        assert (state.running, state.deaths, state.last_error) == (
            True,
            3,
            "RuntimeError: crash number 3",
        )
    assert deaths("flaky") - before == 3
    lines = [r for r in caplog.records if r.name == "mqttlink.tasks"]
    assert [r.getMessage().split(";")[0] for r in lines] == [
        f"flaky died (RuntimeError: crash number {n})" for n in (1, 2, 3)
    ]
    # the first death shows where it happened; a crash loop does not repeat the traceback
    assert [r.exc_info is not None for r in lines] == [True, False, False]


async def test_a_task_that_returns_counts_as_a_death() -> None:
    runs: list[int] = []

    async def returns_once() -> None:
        runs.append(1)
        if len(runs) > 1:
            await asyncio.Event().wait()

    async with asyncio.timeout(30), background_tasks(QUICK) as tasks:
        state = tasks.supervise("returns", returns_once)
        await wait_until(lambda: state.running and state.deaths == 1, what="the restart")
    assert state.last_error == "returned"


async def test_leaving_the_context_cancels_and_awaits_every_task() -> None:
    stopped = asyncio.Event()

    async def serve() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async with asyncio.timeout(30):
        async with background_tasks(QUICK) as tasks:
            state = tasks.supervise("server", serve)
            await wait_until(lambda: state.running, what="the task to start")
        assert stopped.is_set()
        assert (state.running, state.deaths) == (False, 0)
