"""Every dropped message counted, few lines logged: a flood must not become a flood of logs.

How it works: :meth:`DropLog.drop` increments ``storefleet_ingest_messages_dropped{reason}`` for
every message, and logs one line (the reason and what to do) for the first drop of a reason in
each interval. Later drops of that reason in the same interval are only tallied; the tally is
logged as one line when the next interval starts for that reason, or by :meth:`DropLog.flush`
(called periodically by the worker). So a flood of 4,000 malformed messages writes a handful of
lines per reason, and a quiet fleet's single bad message is still logged at once. Never a
traceback: an expected drop is not a bug.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable

from control_plane.ingest import metrics

log = logging.getLogger("control_plane.ingest.worker")

#: A reason quotes the sender's bytes; keep a log line one line and of a readable length.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REASON_LENGTH = 300


def one_line(text: str, limit: int = REASON_LENGTH) -> str:
    """``text`` without control characters (no forged log lines) and cut to ``limit``."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DropLog:
    """Counts drops by reason and logs at most one line per reason per interval, plus a tally."""

    def __init__(
        self, *, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._opened: dict[str, float] = {}  # reason -> when its interval started
        self._tally: Counter[str] = Counter()
        self._last: dict[str, str] = {}
        self._since_flush = 0

    def drop(self, reason: str, detail: str, *, level: int = logging.WARNING) -> None:
        """Count one dropped message; log it if it is the first of ``reason`` this interval."""
        metrics.DROPPED.labels(reason).inc()
        self._since_flush += 1
        self.note(reason, detail, level=level)

    def note(self, reason: str, detail: str, *, level: int = logging.WARNING) -> None:
        """Log ``detail`` under ``reason`` at the same pace as drops, without counting a drop."""
        now = self._clock()
        opened = self._opened.get(reason)
        if opened is not None and now - opened < self.interval:
            self._tally[reason] += 1
            self._last[reason] = detail
            return
        self._flush_reason(reason, now)
        self._opened[reason] = now
        log.log(level, "ingest: %s: %s", reason, one_line(detail))

    def flush(self) -> int:
        """Log the tally of every reason whose interval has passed (the end of a flood).

        Returns how many messages were dropped since the last flush.
        """
        now = self._clock()
        for reason, opened in list(self._opened.items()):
            if now - opened >= self.interval:
                self._flush_reason(reason, now)
                del self._opened[reason]
        dropped, self._since_flush = self._since_flush, 0
        return dropped

    def _flush_reason(self, reason: str, now: float) -> None:
        count = self._tally.pop(reason, 0)
        if not count:
            return
        seconds = now - self._opened.get(reason, now)
        log.warning(
            "ingest: %s: %d more like it in the last %.0f s; the latest: %s",
            reason,
            count,
            seconds,
            one_line(self._last.pop(reason, "")),
        )
