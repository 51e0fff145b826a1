"""Recovering the shift at start: the Z report of a close the appliance stopped in the middle of.

How it works: closing a shift commits ``shift.closed`` and then the numbered ``report.z``. If the
appliance stops between the two, the journal holds a closed shift without its Z report.
:func:`finish_interrupted_close` (run by ``Register.start``) replays the shift from its records,
closes the replay with the counted cash, cashier and time the ``shift.closed`` record holds, and
books the same Z report, so a closed shift always has one. It needs only the ``Bookkeeper``, not
the register: ``register`` imports it, and ``shift_desk`` (which builds on ``register``) never
has to be imported by ``register``.
"""

from __future__ import annotations

from edge.checkout.journal_body import JournalRecord
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale, SaleVoided
from edge.checkout.shift import CashMoved, ReportKind, Shift, ShiftReport
from edge.pos.bookkeeper import Bookkeeper


async def finish_interrupted_close(
    books: Bookkeeper, shift: Shift, records: list[JournalRecord]
) -> None:
    """Book the Z report of a shift closed just before the appliance stopped, if it is missing."""
    closed = shift.closed
    if closed is None:  # still open: no close was interrupted
        return
    shift_id = shift.opened.shift_id
    if any(
        isinstance(r, ShiftReport) and r.shift_id == shift_id and r.report is ReportKind.Z
        for r in records
    ):
        return
    folded = [
        r
        for r in records[1:]
        if isinstance(r, (Sale, SaleReturn, SaleVoided, CashMoved)) and r.shift_id == shift_id
    ]
    replay = Shift.replay([records[0], *folded])
    _, z = replay.close(
        counted_cash_minor=closed.counted_cash_minor, by=closed.closed_by, at=closed.closed_at
    )
    await books.book_report(z)
