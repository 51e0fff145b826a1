"""The background tasks of a long-lived edge service: running while it is entered, no longer.

Why one primitive: a peripheral service (the printer's queue worker, a scanner's reader, an RFID
reader's session) is an async context manager whose work runs as named tasks for as long as the
service is entered. Five services each entered a ``TaskGroup`` by hand (``await
group.__aenter__()`` in their own ``__aenter__``) and left it with made-up exception details;
this is the one way to do it, the edge's counterpart of the control plane's
``control_plane.supervision`` (which restarts its tasks; a peripheral's own loop reconnects).

How it works: :meth:`ServiceTasks.start` enters one ``asyncio.TaskGroup`` through an
``AsyncExitStack``, :meth:`~ServiceTasks.spawn` adds a named task to it (at start or later, as
a scanner watcher does for each device it finds), :meth:`~ServiceTasks.stop` cancels every task
still running and waits for them. A task that dies with an error does what it does in any
``TaskGroup``: it cancels the task that started the service, and its error comes out of
:meth:`~ServiceTasks.stop` — no task dies unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class ServiceTasks:
    """The named tasks of one service: started in its ``__aenter__``, stopped in ``__aexit__``."""

    def __init__(self, service: str) -> None:
        self.service = service  # named in the errors a misuse raises
        self._stack: contextlib.AsyncExitStack | None = None
        self._group: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Open the task group; from now on :meth:`spawn` may start tasks."""
        if self._stack is not None:
            raise RuntimeError(f"{self.service} is already running: enter it once")
        stack = contextlib.AsyncExitStack()
        self._group = await stack.enter_async_context(asyncio.TaskGroup())
        self._stack = stack

    def spawn(self, work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``work`` as task ``name`` until it ends or the service stops."""
        if self._group is None:
            work.close()  # never awaited: close it so no "never awaited" warning hides the misuse
            raise RuntimeError(f"{self.service} is not running: enter it before it starts {name}")
        task = self._group.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def stop(self) -> None:
        """Cancel every task still running and wait for all of them; raise what any died of."""
        if self._stack is None:
            raise RuntimeError(f"{self.service} was left without being entered")
        for task in list(self._running):
            task.cancel()
        stack, self._stack, self._group = self._stack, None, None
        await stack.aclose()
