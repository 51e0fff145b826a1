"""Rate limit on typed-code look-ups: the fallback code is 55 bits, so guessing must stay slow.

Only look-ups that find nothing count (a typo caught by the check character never reaches the
store and tells a guesser nothing they could not compute). Per client address, in a sliding
window, per control-plane instance: with N instances behind a balancer a guesser gets N times
the budget, which is still ~10^14 times too few for a 55-bit code within its 24 hours.
"""

from __future__ import annotations

import math
import time
from collections import deque
from types import MappingProxyType

from provisioning.errors import EnrolmentRefused

WINDOW_SECONDS = 600.0


class TooManyAttempts(EnrolmentRefused):
    """Too many unknown typed codes from one address: refuse for a while."""

    reason = "too_many_attempts"
    advice = "wait ten minutes before typing a code again, or scan the QR code instead"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        #: whole seconds until this address may type a code again (the 429's Retry-After)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = MappingProxyType({"Retry-After": str(self.retry_after)})


class CodeAttempts:
    """Failed typed-code look-ups per client address, in a sliding window."""

    def __init__(self, *, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]  # forget quiet clients: memory stays bounded
            return deque()
        return failures

    def check(self, client: str, *, now: float | None = None) -> None:
        """Raise TooManyAttempts if `client` used up its failures in the window."""
        moment = now if now is not None else time.monotonic()
        recent = self._recent(client, moment)
        if len(recent) >= self.limit:
            # the window admits a code again once its oldest counted failure leaves it
            raise TooManyAttempts(
                f"{self.limit} unknown codes from this address",
                retry_after=recent[-self.limit] + self.window - moment,
            )

    def failed(self, client: str, *, now: float | None = None) -> None:
        """Count one unknown code from `client`."""
        moment = now if now is not None else time.monotonic()
        self._recent(client, moment)
        self._failures.setdefault(client, deque()).append(moment)
