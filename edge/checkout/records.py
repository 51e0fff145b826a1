"""Every record the checkout journals, and decoding any of them from its body by ``kind``.

How it works: each record class registers its kinds with ``JournalRecord`` when its module is
imported. This module imports all of them — ``sale.completed`` and ``sale.voided`` (``sale``),
``sale.returned`` (``returns``), ``shift.opened``, ``shift.cash_moved``, ``shift.closed``,
``report.x`` and ``report.z`` (``shift``) — so ``decode_journal_body`` finds every kind. It sits
above the record modules in the import graph: they never import it, so the graph stays a tree
(``sale`` used to hold this function and import ``returns`` and ``shift`` inside it, a circle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.checkout.journal_body import JournalRecord, record_class
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale, SaleVoided
from edge.checkout.shift import CashMoved, ShiftClosed, ShiftOpened, ShiftReport

#: The record classes, one per module above; naming them keeps the imports (and kinds) in use.
RECORD_CLASSES: tuple[type[JournalRecord], ...] = (
    Sale,
    SaleVoided,
    SaleReturn,
    ShiftOpened,
    CashMoved,
    ShiftClosed,
    ShiftReport,
)


def decode_journal_body(body: Mapping[str, Any]) -> JournalRecord:
    """Decode any checkout journal body by its ``kind``; raises ``JournalBodyError``."""
    return record_class(str(body.get("kind"))).from_journal_body(body)
