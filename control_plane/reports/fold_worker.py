"""The fold worker: the reports' rollups kept caught up with the journal, off the ack path.

How it works: a supervised loop of every control-plane instance (``rollup-fold`` in
:mod:`control_plane.app`). A round finds the devices whose rollup mark is behind their
high-water mark (one query, the fleet's backlog with it) and folds each one's records in pages
(:func:`~control_plane.reports.rollups.fold_page`: the journal read and folded with no lock
held, then one short transaction that claims the seqs by moving the mark and adds the sums), so
a record is summed exactly once however many instances, workers and reads fold at once, and the
ingest never waits for a fold. Rounds start when this process's ingest stores records
(:func:`~control_plane.reports.ingest_rollups.records_stored`) or every ``poll_s`` (another
instance's ingest, a restart), at most one per ``interval_s``: at a steady 60 sales/s a round
folds about a second's records per device in one transaction instead of one per batch.

Bounded: a page is at most ``page`` seqs (one transaction; ``busy_page`` while the ingest is
busy, so no one piece of work is long), folded ``chunk`` records between two turns of the event
loop. While this process's ingest is storing records the worker pauses after each page for as
long as the page took (its fold and its statements, which take the database's time from the
ingest too) times ``(1 - share) / share``, so it takes at most about ``share`` of the time from
the ingest; once the burst is over it folds the backlog at full speed.

Consistency: a report never waits for this worker — it catches its stores up before it reads
and is exact; the worker only keeps that catch-up short. A fold cancelled or killed mid-page
loses nothing and doubles nothing: cancelled while it reads or folds, it has written nothing;
cancelled inside its short write, the write runs to its commit first; killed, its transaction
never committed, the mark did not move, and the next fold takes the same seqs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.reports import ingest_rollups
from control_plane.reports.rollup_tables import report_rollup_marks
from control_plane.reports.rollups import fold_page

log = logging.getLogger(__name__)

FOLDED = Counter(
    "storefleet_report_rollup_records_folded", "Journal records folded into the reports' rollups"
)
BEHIND = Gauge(
    "storefleet_report_rollup_records_behind",
    "Seqs stored but not yet in the reports' rollups, at the fold worker's last round",
)
#: The ingest counts as busy this long after it last stored records.
BUSY_S = 0.25


@dataclass(frozen=True, slots=True)
class FoldSettings:
    """How often and how much the worker folds; ``share``: of the time, at most, while the
    ingest is busy (a tenth: the ingest's pace stays within the issue's 0.9x)."""

    interval_s: float = 1.0
    poll_s: float = 5.0
    page: int = 2000
    busy_page: int = 250
    chunk: int = 250
    share: float = 0.1


class FoldWorker:
    """Folds every device's stored records into the rollups, a page at a time."""

    def __init__(self, *, engine: AsyncEngine, settings: FoldSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or FoldSettings()
        self.folded = 0
        self.rounds = 0
        self._wake = asyncio.Event()
        self._stored_at = float("-inf")

    def _stored(self, _device_id: str) -> None:
        self._stored_at = time.monotonic()
        self._wake.set()

    async def run(self) -> None:
        """Fold until cancelled: a round whenever records were stored, or every ``poll_s``."""
        settings = self.settings
        with ingest_rollups.listening(self._stored):
            while True:
                self._wake.clear()
                await self.fold_round()
                await asyncio.sleep(settings.interval_s)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.poll_s):
                        await self._wake.wait()

    async def fold_round(self) -> int:
        """Fold every device behind up to its high-water mark (as it was found); how many
        records were folded."""
        marks = report_rollup_marks
        behind = func.coalesce(marks.c.upto_seq, 0)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(devices.c.id, devices.c.hwm - behind)
                    .outerjoin(marks, marks.c.device_id == devices.c.id)
                    .where(devices.c.hwm > behind)
                )
            ).all()
        BEHIND.set(sum(int(gap) for _, gap in rows))
        folded = 0
        for device_id, gap in rows:
            folded += await self._fold_device(device_id, int(gap))
        self.rounds += 1
        self.folded += folded
        return folded

    async def _fold_device(self, device_id: str, gap: int) -> int:
        """The device's records up to where it stood at the round's start (a device still
        storing fast does not keep the round from the others)."""
        settings = self.settings
        folded = 0
        smallest = min(settings.page, settings.busy_page)
        for _ in range(-(-gap // smallest)):  # so many pages of either size cover the gap
            began = time.monotonic()
            page = settings.busy_page if self._busy(began) else settings.page
            done = await fold_page(self.engine, device_id, page=page, chunk=settings.chunk)
            if done is None:
                break
            folded += done
            FOLDED.inc(done)
            # the fold and its statements (the database's time too), ``share`` of the time
            await self._yield_to_ingest((time.monotonic() - began) * (1 / settings.share - 1))
        return folded

    async def _yield_to_ingest(self, pause_s: float) -> None:
        """Pause up to ``pause_s`` while this process's ingest is busy, no longer than it is
        (after a burst the backlog is folded at full speed)."""
        until = time.monotonic() + pause_s
        # a timed pause cut short when the ingest goes quiet (no event marks "quiet")
        while (now := time.monotonic()) < until and self._busy(now):  # noqa: ASYNC110
            await asyncio.sleep(min(BUSY_S, until - now))

    def _busy(self, now: float) -> bool:
        """Whether this process's ingest stored records within the last :data:`BUSY_S`."""
        return now - self._stored_at < BUSY_S
