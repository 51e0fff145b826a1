"""Turning the checkout's frozen records into ledger commits, and indexing them in ``pos.db``.

How it works: a sale is committed with ``Ledger.record_sale``; its ``sale_id`` is the payment's
idempotency key, so a second "pay" for the same cart is a no-op (``replayed``) rather than a
second sale. The domain ``Sale`` needs the receipt number, which the ledger assigns inside its
transaction, so it is built in the ``detail`` callback and kept for the receipt. The ledger's
summary lines are the sale's lines at what the customer paid for them, plus one "cash rounding"
line when the cash was rounded: the ledger's total is then what went into the drawer, and its
change is the change handed back (cash rounding is not a tender, the ledger refuses a tender
short of the total). Returns and X/Z reports take a receipt number through
``append_numbered_event``; shift events use ``append_event``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from edge.checkout.cart import Cart
from edge.checkout.journal_body import JournalRecord
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale, SaleVoided, complete_sale
from edge.checkout.sale_loyalty import SaleLoyalty
from edge.checkout.shift import ShiftReport
from edge.checkout.tenders import Payment, TenderKind
from edge.ledger import CommittedSale, Ledger, SaleDraft, SaleLine, StoredRecord, Tender
from edge.pos.journal_reader import decode, index_entry
from edge.pos.register_db import RegisterDb
from protocols.vocabulary import JournalKind

ROUNDING_SKU = "cash-rounding"
#: A sale's attached customer id and its loyalty movements.
Attached = tuple[str, SaleLoyalty]


def sale_draft(
    sale_id: str, cart: Cart, payment: Payment, loyalty: Attached | None = None
) -> SaleDraft:
    """The ledger's summary of a sale about to be completed (before its receipt number)."""
    totals = cart.totals()
    by_id = {line.line_id: line for line in cart.open_lines}
    lines = [
        SaleLine(
            sku=by_id[t.line_id].item_id,
            description=by_id[t.line_id].name,
            quantity=by_id[t.line_id].quantity,
            unit_price_minor=by_id[t.line_id].unit_price_minor,
            amount_minor=t.total_minor,
        )
        for t in totals.lines
    ]
    if payment.rounding_minor:
        lines.append(
            SaleLine(
                ROUNDING_SKU,
                "Cash rounding",
                Decimal(1),
                payment.rounding_minor,
                payment.rounding_minor,
            )
        )
    tenders = tuple(
        Tender(t.kind.value, t.received_minor, t.terminal_reference)
        if t.kind is TenderKind.CARD
        else Tender(t.kind.value, t.received_minor)
        for t in payment.tenders
    )
    if loyalty is None:
        return SaleDraft(sale_id, cart.policy.currency.code, tuple(lines), tenders)
    customer_id, movements = loyalty
    return SaleDraft(
        sale_id,
        cart.policy.currency.code,
        tuple(lines),
        tenders,
        customer_id=customer_id,
        loyalty=movements.body(),
    )


class Bookkeeper:
    """Commits the register's records to the ledger and keeps ``pos.db``'s index in step."""

    def __init__(self, *, ledger: Ledger, db: RegisterDb, register_id: str) -> None:
        self.ledger = ledger
        self.db = db
        self.register_id = register_id

    async def _index(self, seq: int) -> None:
        stored = await self.ledger.read_records(seq, 1)
        entries = [e for s in stored if (e := index_entry(s)) is not None]
        await self.db.index(entries, upto_seq=seq)

    async def book_sale(
        self,
        cart: Cart,
        payment: Payment,
        *,
        shift_id: str,
        cashier_id: str,
        at: datetime,
        loyalty: Attached | None = None,
    ) -> tuple[Sale, CommittedSale]:
        """Commit a settled sale; on a replay the first booking's ``Sale`` comes back.

        ``loyalty``: the attached customer's id and the sale's movements, journaled with it.
        """
        customer_id, movements = loyalty if loyalty is not None else (None, None)
        built: list[Sale] = []

        def detail(receipt_no: int) -> dict[str, Any]:
            sale = complete_sale(
                cart,
                payment,
                register_id=self.register_id,
                receipt_number=receipt_no,
                shift_id=shift_id,
                cashier_id=cashier_id,
                completed_at=at,
                customer_id=customer_id,
                loyalty=movements,
            )
            built.append(sale)
            return sale.to_journal_body()

        complete_sale(  # refuses an unsettled payment before the ledger is asked
            cart,
            payment,
            register_id=self.register_id,
            receipt_number=0,
            shift_id=shift_id,
            cashier_id=cashier_id,
            completed_at=at,
        )
        draft = sale_draft(payment.idempotency_key, cart, payment, loyalty)
        committed = await self.ledger.record_sale(draft, detail=detail)
        if committed.replayed:
            record = await self._record(committed.seq)
            if not isinstance(record, Sale):
                raise LookupError(f"journal seq {committed.seq} holds no checkout sale")
            return record, committed
        await self._index(committed.seq)
        return built[0], committed

    async def book_return(self, ret: SaleReturn) -> SaleReturn:
        """Commit a return; the ledger numbers it and the returned record carries the number."""
        built: list[SaleReturn] = []

        def build(number: int) -> dict[str, Any]:
            numbered = replace(ret, receipt_number=number)
            built.append(numbered)
            return numbered.to_journal_body()

        seq, _ = await self.ledger.append_numbered_event(JournalKind.SALE_RETURNED, build)
        await self._index(seq)
        return built[0]

    async def book_report(self, report: ShiftReport) -> int:
        """Commit an X or Z report; returns its receipt number."""

        def build(number: int) -> dict[str, Any]:
            return {**report.to_journal_body(), "receipt_no": number}

        seq, number = await self.ledger.append_numbered_event(report.journal_kind, build)
        await self._index(seq)
        return number

    async def book(self, record: JournalRecord) -> int:
        """Commit a record without a receipt number (shift events, voided sales)."""
        seq = await self.ledger.append_event(record.journal_kind, record.to_journal_body())
        await self._index(seq)
        return seq

    async def book_void(self, voided: SaleVoided) -> int:
        """Commit a sale abandoned before payment."""
        return await self.book(voided)

    async def _record(self, seq: int) -> JournalRecord | None:
        stored: list[StoredRecord] = await self.ledger.read_records(seq, 1)
        return decode(stored[0]) if stored else None
