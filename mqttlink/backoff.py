"""The one reconnect-with-backoff of the appliance and the control plane.

Why one: six loops (agent, replicator, ingest, serial reopen, LLRP, …) each had their own
``delay = min(cap, delay * 2)``, with different jitter and different ideas of when to start
afresh (the ingest worker never did: after a day connected, a broker restart cost up to its cap).

How it works: exponential with *full jitter* — the n-th wait in a row is drawn uniformly from
``[0, min(cap, initial * 2**n)]`` — so a fleet that lost its broker at the same moment does not
come back at the same moment. A connection that stayed up for ``healthy_s`` (see
:meth:`Backoff.up`) starts the sequence afresh; one that drops at once keeps climbing, so a broker
that accepts and then drops never gets hammered. Randomness, sleep and clock are injected, so the
sequence is tested without waiting and without a real clock.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, Self


class BackoffSettings(Protocol):
    """The two settings every reconnecting loop's settings object names alike."""

    @property
    def backoff_initial(self) -> float:
        """The first wait's ceiling (seconds)."""
        ...

    @property
    def backoff_max(self) -> float:
        """The cap of every wait (seconds)."""
        ...


class Backoff:
    """``await backoff.sleep_next()`` between attempts; ``backoff.up()`` when one connects."""

    def __init__(
        self,
        *,
        initial: float,
        cap: float,
        healthy_s: float = 0.0,
        uniform: Callable[[float, float], float] = random.uniform,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError(f"backoff needs 0 < initial <= cap, got initial={initial} cap={cap}")
        if healthy_s < 0:
            raise ValueError(f"backoff healthy_s must be >= 0, got {healthy_s}")
        self.initial = initial
        self.cap = cap
        self.healthy_s = healthy_s
        self._uniform = uniform
        self._sleep = sleep
        self._clock = clock
        self.attempt = 0  # waits in a row since the last healthy connection
        self._up_since: float | None = None

    @classmethod
    def capped(
        cls,
        *,
        initial: float,
        cap: float,
        healthy_s: float = 0.0,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> Self:
        """A backoff whose ``initial`` above ``cap`` is taken as ``cap``.

        Settings validate each field alone, so a small cap (a test's, an impatient site's) beside
        the default initial is what the operator meant, not an error to refuse at start.
        """
        return cls(initial=min(initial, cap), cap=cap, healthy_s=healthy_s, uniform=uniform)

    @classmethod
    def from_settings(cls, settings: BackoffSettings, *, healthy_s: float = 0.0) -> Self:
        """The backoff a loop's settings ask for (``backoff_initial``, ``backoff_max``)."""
        return cls.capped(
            initial=settings.backoff_initial, cap=settings.backoff_max, healthy_s=healthy_s
        )

    def up(self) -> None:
        """The attempt connected: once it has lasted ``healthy_s``, the next wait starts afresh."""
        self._up_since = self._clock()

    def reset(self) -> None:
        """Start afresh now (the caller knows the last attempt made progress)."""
        self.attempt = 0
        self._up_since = None

    def next_delay(self) -> float:
        """The next wait in seconds, drawn with full jitter; advances the sequence."""
        if self._up_since is not None:
            if self._clock() - self._up_since >= self.healthy_s:
                self.attempt = 0
            self._up_since = None
        ceiling = self._ceiling(self.attempt)
        if ceiling < self.cap:  # once at the cap, stop counting
            self.attempt += 1
        return self._uniform(0.0, ceiling)

    def delay_after(self, failures: int) -> float:
        """The wait after ``failures`` failed attempts in a row, drawn with full jitter.

        For a caller that keeps the count itself, where it must outlive the process (a print
        job stores its attempts in its row); the sequence is the same as :meth:`next_delay`'s.
        """
        return self._uniform(0.0, self._ceiling(failures))

    def _ceiling(self, failures: int) -> float:
        """``min(cap, initial * 2**failures)``; the exponent stops at 1000 (2.0**1024 raises)."""
        return min(self.cap, self.initial * 2.0 ** min(max(failures, 0), 1000))

    async def sleep_next(self) -> float:
        """Wait the next delay; returns it (for a log line)."""
        delay = self.next_delay()
        await self._sleep(delay)
        return delay
