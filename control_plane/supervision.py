"""One way to run the control plane's background tasks: named, supervised, stopped together.

How it works: :func:`background_tasks` is an async context manager around one ``TaskGroup``.
:meth:`BackgroundTasks.supervise` starts a long-running coroutine function as a named task; when
it dies (raises, or returns: a service loop never should) the death is counted
(``storefleet_background_task_deaths_total{task}``) and logged as one line — with its traceback
only the first time, so a crash loop does not fill the disk — and it is started again after the
fleet's one jittered backoff (:class:`mqttlink.backoff.Backoff`, one per task), which doubles up
to its cap and starts afresh once a run has stayed up for its ``healthy_s``.

Not :func:`mqttlink.reconnect.retry_forever`: that loop retries the errors it is told of and lets
a defect through; this one exists to catch every death, defects first, and to show it to
readiness. :class:`Supervised` is what readiness reads: is the task running now,
how often has it died, and why last. Leaving the context cancels every task and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter

from mqttlink.backoff import Backoff

log = logging.getLogger(__name__)

DEATHS = Counter(
    "storefleet_background_task_deaths",
    "Background tasks that died and were restarted, by task",
    ["task"],
)


@dataclass(slots=True)
class Supervised:
    """The live state of one supervised task."""

    name: str
    running: bool = False
    deaths: int = 0
    last_error: str | None = None


RestartBackoff = Callable[[], Backoff]


def restart_backoff() -> Backoff:
    """A task's restart delays: from 0.5 s up to 30 s, afresh after a minute up."""
    return Backoff(initial=0.5, cap=30.0, healthy_s=60.0)


class BackgroundTasks:
    """The supervised tasks of one service; made by :func:`background_tasks`."""

    def __init__(self, group: asyncio.TaskGroup, backoff: RestartBackoff) -> None:
        self._group = group
        self._backoff = backoff
        self._tasks: list[asyncio.Task[None]] = []
        self.supervised: dict[str, Supervised] = {}

    def supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> Supervised:
        """Run ``run()`` as task ``name`` until the context ends, restarting it when it dies."""
        if name in self.supervised:
            raise ValueError(f"a background task named {name!r} is already running")
        state = Supervised(name=name)
        self.supervised[name] = state
        self._tasks.append(self._group.create_task(self._keep_running(state, run), name=name))
        return state

    def cancel(self) -> None:
        """Stop every task (the context's exit waits for them)."""
        for task in self._tasks:
            task.cancel()

    async def _keep_running(self, state: Supervised, run: Callable[[], Awaitable[None]]) -> None:
        backoff = self._backoff()
        while True:
            backoff.up()  # a run that lasts ``healthy_s`` makes the next restart quick again
            state.running = True
            failure: Exception | None = None
            try:
                await run()
            except Exception as err:  # any death is counted and restarted
                failure = err
            finally:
                state.running = False
            state.deaths += 1
            state.last_error = "returned" if failure is None else _describe(failure)
            DEATHS.labels(state.name).inc()
            wait = backoff.next_delay()
            log.error(
                "%s died (%s); restarting in %.1f s (death %d, counted in "
                "storefleet_background_task_deaths_total)",
                state.name,
                state.last_error,
                wait,
                state.deaths,
                exc_info=failure if state.deaths == 1 else None,
            )
            await asyncio.sleep(wait)


def _describe(err: BaseException) -> str:
    """The error a person should read: a TaskGroup's group is unwrapped to its first cause."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return f"{type(err).__name__}: {err}"


@contextlib.asynccontextmanager
async def background_tasks(
    backoff: RestartBackoff = restart_backoff,
) -> AsyncIterator[BackgroundTasks]:
    """Supervised tasks for the body of the ``async with``; all cancelled and awaited at its end.

    ``backoff`` makes each task its own :class:`~mqttlink.backoff.Backoff`: one task's crash loop
    must not lengthen another's restart.
    """
    async with asyncio.TaskGroup() as group:
        tasks = BackgroundTasks(group, backoff)
        try:
            yield tasks
        finally:
            tasks.cancel()
