"""Pushing the register's state to every open screen, and watching the link to the cloud.

How it works: the register calls :meth:`Hub.poke` after every change. Each WebSocket has one
``asyncio.Event``; its writer waits on it, clears it and sends the *current* state, so a burst
of changes costs one message and a slow screen never builds a queue. ``LinkWatch`` polls the
replicator's ``connected`` event and the ledger's backlog a few times a second (the ledger's
own ``changed`` event belongs to the replicator, which clears it) and pokes the hub whenever
it differs from what the screens were last sent (``shown``) — not from what the watch saw
last, which would miss a backlog that went 0 → 1 → 0 between two polls while a register push
showed the 1. So the offline badge and the "not yet sent" count follow within a poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from edge.ledger import Ledger


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the status bar shows about replication."""

    online: bool | None  # None: this appliance has no replicator (not enrolled, demo offline)
    backlog: int


class Hub:
    """Fan-out of "state changed" to the open screens."""

    def __init__(self) -> None:
        self._screens: set[asyncio.Event] = set()

    def poke(self) -> None:
        for dirty in self._screens:
            dirty.set()

    def join(self) -> asyncio.Event:
        dirty = asyncio.Event()
        dirty.set()  # a new screen gets the state at once
        self._screens.add(dirty)
        return dirty

    def leave(self, dirty: asyncio.Event) -> None:
        self._screens.discard(dirty)

    @property
    def screens(self) -> int:
        return len(self._screens)


class LinkWatch:
    """Polls the replication link and pokes the hub when it changes."""

    def __init__(
        self,
        *,
        ledger: Ledger | None,
        connected: asyncio.Event | None,
        on_change: Callable[[], None],
        interval: float = 0.2,
    ) -> None:
        self.ledger = ledger
        self.connected = connected
        self.on_change = on_change
        self.interval = interval
        #: The link state in the last document sent to the screens (set by the screen).
        self.shown: LinkState | None = None

    def state(self) -> LinkState:
        online = None if self.connected is None else self.connected.is_set()
        backlog = 0 if self.ledger is None else self.ledger.backlog
        return LinkState(online, backlog)

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            if self.shown is not None and self.state() != self.shown:
                self.on_change()
