"""The one way to run a long-lived service's background tasks, on the appliance and in the cloud.

Why one: the register's composition, the appliance, the demo, the kiosk server, the simulators and
five peripheral services each entered a ``TaskGroup`` by hand or started a bare ``create_task``,
and the control plane had a supervisor of its own. A task that died took its name with it (an
``ExceptionGroup`` says what failed, not which loop), and a bare task could die unseen.

How it works: :class:`ServiceTasks` is an async context manager around one ``asyncio.TaskGroup``
(or :meth:`~ServiceTasks.start` / :meth:`~ServiceTasks.stop`, for a service that enters it from
its own ``__aenter__``). A task runs one of two ways, chosen by what its death should do:

* :meth:`~ServiceTasks.spawn` — the task is part of the service. When it dies of an error, one
  log line names the service and the task, and the ``TaskGroup`` stops the service: it cancels
  the body and every other task, and the error comes out of the ``async with`` (or ``stop``).
  A task that returns has simply finished its work.
* :meth:`~ServiceTasks.supervise` — a loop that must keep going whatever it meets (the ingest
  worker). Each death (an error, or a return: a service loop never should) is counted in
  ``storefleet_background_task_deaths_total{task}`` and logged as one line — with its traceback
  only the first time, so a crash loop does not fill the disk — and the loop starts again after
  its own :class:`~mqttlink.backoff.Backoff` (one per task: one task's crash loop must not
  lengthen another's restart), which starts afresh once a run stayed up for its ``healthy_s``.
  :class:`Supervised` is its live state: what readiness reads.

Leaving cancels every task still running and waits for all of them: no task outlives its service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from prometheus_client import Counter

from mqttlink.backoff import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")

DEATHS = Counter(
    "storefleet_background_task_deaths",
    "Background tasks that died and were restarted, by task",
    ["task"],
)

RestartBackoff = Callable[[], Backoff]


def restart_backoff() -> Backoff:
    """A supervised task's restart delays: from 0.5 s up to 30 s, afresh after a minute up."""
    return Backoff(initial=0.5, cap=30.0, healthy_s=60.0)


@dataclass(slots=True)
class Supervised:
    """The live state of one supervised task."""

    name: str
    running: bool = False
    deaths: int = 0
    last_error: str | None = None


class ServiceTasks:
    """The named tasks of one service: running while it is entered, no longer."""

    def __init__(self, service: str, *, restart: RestartBackoff = restart_backoff) -> None:
        self.service = service  # named in the log line of a death and in a misuse's error
        self._restart = restart
        self._stack: contextlib.AsyncExitStack | None = None
        self._group: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self.supervised: dict[str, Supervised] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._leave().__aexit__(et, e, tb)

    async def start(self) -> None:
        """Open the task group; from now on tasks may start."""
        if self._stack is not None:
            raise RuntimeError(f"{self.service} is already running: enter it once")
        stack = contextlib.AsyncExitStack()
        self._group = await stack.enter_async_context(asyncio.TaskGroup())
        self._stack = stack

    async def stop(self) -> None:
        """Cancel every task still running and wait for all of them; raise what any died of."""
        await self._leave().aclose()

    def spawn(self, work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``work`` as task ``name`` until it ends; if it dies, the service stops."""
        task = self._create(work, name=name)
        task.add_done_callback(self._report)
        return task

    def supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> Supervised:
        """Run ``run()`` as task ``name`` until the service stops; start it again when it dies."""
        if name in self.supervised:
            raise ValueError(f"a background task named {name!r} is already running")
        state = Supervised(name=name)
        self._create(self._keep_running(state, run), name=name)
        self.supervised[name] = state
        return state

    def cancel(self) -> None:
        """Cancel every task still running (leaving waits for them)."""
        for task in list(self._running):
            task.cancel()

    def _create(self, work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        if self._group is None:
            work.close()  # never awaited: close it so no "never awaited" warning hides the misuse
            raise RuntimeError(f"{self.service} is not running: enter it before it starts {name}")
        task = self._group.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def _leave(self) -> contextlib.AsyncExitStack:
        """Cancel what runs and hand back the group's exit, which waits for it."""
        if self._stack is None:
            raise RuntimeError(f"{self.service} was left without being entered")
        self.cancel()
        stack, self._stack, self._group = self._stack, None, None
        return stack

    def _report(self, task: asyncio.Task[Any]) -> None:
        """One line naming the task that died, before its ``TaskGroup`` stops the service."""
        if task.cancelled() or task.exception() is None:
            return
        log.error(
            "%s: task %s died (%s); stopping %s",
            self.service,
            task.get_name(),
            describe(task.exception()),
            self.service,
        )

    async def _keep_running(self, state: Supervised, run: Callable[[], Awaitable[None]]) -> None:
        backoff = self._restart()
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
            state.last_error = "returned" if failure is None else describe(failure)
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


def describe(err: BaseException | None) -> str:
    """The error a person should read: a TaskGroup's group is unwrapped to its first cause."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return f"{type(err).__name__}: {err}"
