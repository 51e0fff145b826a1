"""The ingest's one call into the reports: a batch's records added to the rollups in the very
transaction that stores them (issue 13: "maintained by the ingest, in the same transaction as
the records they summarise").

Why in the ingest: a read that first caught up the records stored since the last read paid, for
a busy fleet, a fold of every new record, and the overview would have had to catch up the whole
fleet per render. Folded here, a batch's rows are already decoded (no JSON parsing), written by
one set-based statement (:mod:`~control_plane.reports.rollup_write`), and every read finds the
rollups current.

How it stays exact: the device row is locked by the ingest (``FOR UPDATE``; SQLite serialises
writers), and the batch is folded only when the device's mark stands exactly where the batch
starts (its high-water mark before the batch): then the rollups held every record before it and
hold the batch after it, and the mark moves with them. A device whose mark is behind (its rollups
emptied by a migration, or records stored before rollups existed) is left to
:func:`~control_plane.reports.rollups.catch_up`, which every read runs first; once caught up, the
ingest keeps it so.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.devices.tables import stores
from control_plane.reports.rollup_fold import Folded
from control_plane.reports.rollup_tables import report_rollup_marks
from control_plane.reports.rollup_write import add_folded
from control_plane.reports.rollups import fold_records
from protocols.messages import JournalRecord

#: Off only for ``bench/reports.py``'s baseline (the ingest without rollups); a store whose
#: rollups are not kept here is caught up by the next read instead.
FOLD_IN_INGEST = True


async def add_stored_records(
    conn: AsyncConnection,
    *,
    device_id: str,
    store_id: str,
    after: int,
    records: Sequence[JournalRecord],
) -> bool:
    """Add ``records`` (seq ``after`` + 1 onwards, just stored by the ingest in ``conn``'s
    transaction) to the rollups when the device's rollups are caught up to ``after``; whether
    they were."""
    if not FOLD_IN_INGEST or not records:
        return False
    marks = report_rollup_marks
    found = (
        await conn.execute(
            select(stores.c.timezone, marks.c.upto_seq)
            .select_from(stores.outerjoin(marks, marks.c.device_id == device_id))
            .where(stores.c.id == store_id)
        )
    ).first()
    if found is None or (found.upto_seq or 0) != after:
        return False  # behind: the catch-up folds from the mark on
    folded: Folded = fold_records((r.seq, r.kind, r.ts, r.body) for r in records)
    await add_folded(
        conn,
        device_id=device_id,
        store_id=store_id,
        timezone=found.timezone,
        folded=folded,
        upto=records[-1].seq,
    )
    return True
