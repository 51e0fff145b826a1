"""A per-client token bucket, in process: ``rate`` requests per minute, bursts up to ``rate``.

Keyed by client address and principal, so one client cannot spend another's budget and a user
behind a shared address still has their own. Per instance: behind N instances a client gets N
times the budget, which bounds abuse well enough for login guessing (which also locks out) and
for API floods. Memory stays bounded: full buckets carry no information and are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from control_plane.operators.errors import RateLimited

_PRUNE_AT = 10_000


class TokenBuckets:
    """Buckets of ``rate`` tokens refilled at ``rate``/60 per second."""

    def __init__(self, *, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._per_second = rate / 60.0
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._limited: set[Hashable] = set()

    def take(self, key: Hashable) -> None:
        """Spend one token of ``key``'s bucket, or raise RateLimited with the wait."""
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - stamp) * self._per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            first = key not in self._limited
            self._limited.add(key)
            raise RateLimited((1.0 - tokens) / self._per_second, self.rate, first=first)
        self._buckets[key] = (tokens - 1.0, now)
        self._limited.discard(key)
        if len(self._buckets) > _PRUNE_AT:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full_after = self.rate / self._per_second
        self._buckets = {
            key: (tokens, stamp)
            for key, (tokens, stamp) in self._buckets.items()
            if now - stamp < full_after
        }
        self._limited &= self._buckets.keys()
