"""A cashier's shift at one register: float, cash moves, sales, returns, voids, X and Z reports.

How it works: ``Shift`` is an accumulator over journal records. ``open_shift`` makes the
``ShiftOpened`` record and the shift; ``record`` folds in a ``Sale``, ``SaleReturn``,
``SaleVoided`` or ``CashMoved``; ``x_report`` reads the totals at any time without changing
anything; ``close`` takes the counted cash and returns the ``ShiftClosed`` record and the Z
report. Because the shift only ever folds records, the ledger can rebuild it after a restart
with ``Shift.replay(records)``. Expected cash is float + cash in − cash out + cash taken on
sales (after change) − cash paid out on returns; variance is counted − expected.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from edge.checkout.errors import ShiftError
from edge.checkout.journal_body import JournalRecord
from edge.checkout.returns import SaleReturn
from edge.checkout.sale import Sale, SaleVoided
from edge.checkout.tax import TaxRow
from edge.checkout.tenders import TenderKind
from protocols.vocabulary import JournalKind


@dataclass(frozen=True, slots=True)
class ShiftOpened(JournalRecord):
    """A shift starts with a counted float in the drawer."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.SHIFT_OPENED,)

    shift_id: str
    register_id: str
    opened_by: str
    opened_at: datetime
    currency: str
    exponent: int
    float_minor: int


class CashDirection(enum.Enum):
    """Cash put into (change delivery) or taken out of (skim to safe) the drawer."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class CashMoved(JournalRecord):
    """Cash in or out of the drawer outside a sale."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.SHIFT_CASH_MOVED,)

    shift_id: str
    direction: CashDirection
    amount_minor: int
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ShiftClosed(JournalRecord):
    """The drawer counted at close."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.SHIFT_CLOSED,)

    shift_id: str
    closed_by: str
    closed_at: datetime
    expected_cash_minor: int
    counted_cash_minor: int
    variance_minor: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """An amount and a count under a key (a tender kind, a department)."""

    key: str
    amount_minor: int
    count: int


class ReportKind(enum.Enum):
    """X: mid-shift read; Z: the closing report."""

    X = "x"
    Z = "z"


@dataclass(frozen=True, slots=True)
class ShiftReport(JournalRecord):
    """X or Z report; amounts are net of returns; counted/variance only on a Z report."""

    KINDS: ClassVar[tuple[JournalKind, ...]] = (JournalKind.REPORT_X, JournalKind.REPORT_Z)

    report: ReportKind
    shift_id: str
    register_id: str
    currency: str
    exponent: int
    opened_at: datetime
    at: datetime
    float_minor: int
    sales_count: int
    returns_count: int
    voided_sales_count: int
    voided_lines_count: int
    sales_minor: int
    returns_minor: int
    discounts_minor: int
    rounding_minor: int
    cash_in_minor: int
    cash_out_minor: int
    by_tender: tuple[Bucket, ...]
    by_tax_rate: tuple[TaxRow, ...]
    by_department: tuple[Bucket, ...]
    expected_cash_minor: int
    counted_cash_minor: int | None
    variance_minor: int | None

    @property
    def journal_kind(self) -> JournalKind:
        return JournalKind(f"report.{self.report.value}")


def _add(buckets: dict[str, tuple[int, int]], key: str, amount: int) -> None:
    total, count = buckets.get(key, (0, 0))
    buckets[key] = (total + amount, count + 1)


def _add_tax(rows: dict[Decimal, TaxRow], row: TaxRow, sign: int) -> None:
    old = rows.get(row.rate, TaxRow(row.rate, (), 0, 0, 0))
    rows[row.rate] = TaxRow(
        row.rate,
        tuple(sorted(set(old.codes) | set(row.codes))),
        old.net_minor + sign * row.net_minor,
        old.tax_minor + sign * row.tax_minor,
        old.gross_minor + sign * row.gross_minor,
    )


@dataclass
class Shift:
    """The running totals of an open (or closed) shift."""

    opened: ShiftOpened
    closed: ShiftClosed | None = None
    sales_count: int = 0
    returns_count: int = 0
    voided_sales_count: int = 0
    voided_lines_count: int = 0
    sales_minor: int = 0
    returns_minor: int = 0
    discounts_minor: int = 0
    rounding_minor: int = 0
    cash_in_minor: int = 0
    cash_out_minor: int = 0
    cash_drawer_minor: int = 0
    by_tender: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_department: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_tax_rate: dict[Decimal, TaxRow] = field(default_factory=dict)

    @classmethod
    def replay(cls, records: Iterable[JournalRecord]) -> Shift:
        """Rebuild a shift from its journal records, the first being ``ShiftOpened``."""
        it = iter(records)
        first = next(it)
        if not isinstance(first, ShiftOpened):
            raise ShiftError(shift_id="?", reason="replay must start with shift.opened")
        shift = cls(first)
        for record in it:
            if isinstance(record, ShiftClosed):
                shift.closed = record
            elif isinstance(record, (Sale, SaleReturn, SaleVoided, CashMoved)):
                shift.record(record)
        return shift

    def record(self, record: Sale | SaleReturn | SaleVoided | CashMoved) -> None:
        """Fold one record into the totals; a closed shift takes nothing more."""
        if self.closed is not None:
            raise ShiftError(shift_id=self.opened.shift_id, reason="shift is closed")
        if record.shift_id != self.opened.shift_id:
            raise ShiftError(shift_id=self.opened.shift_id, reason=f"record of {record.shift_id}")
        if isinstance(record, Sale):
            self._sale(record)
        elif isinstance(record, SaleReturn):
            self._return(record)
        elif isinstance(record, SaleVoided):
            self.voided_sales_count += 1
        elif record.direction is CashDirection.IN:
            self.cash_in_minor += record.amount_minor
            self.cash_drawer_minor += record.amount_minor
        else:
            self.cash_out_minor += record.amount_minor
            self.cash_drawer_minor -= record.amount_minor

    def _sale(self, sale: Sale) -> None:
        self.sales_count += 1
        self.voided_lines_count += sale.voided_lines
        self.sales_minor += sale.total_minor
        self.discounts_minor += sale.line_discount_minor + sale.basket_discount_minor
        self.rounding_minor += sale.rounding_minor
        for tender in sale.tenders:
            _add(self.by_tender, tender.kind.value, tender.amount_minor)
            if tender.kind is TenderKind.CASH:
                self.cash_drawer_minor += tender.amount_minor
        for line in sale.lines:
            _add(self.by_department, line.department, line.total_minor)
        for row in sale.tax_rows:
            _add_tax(self.by_tax_rate, row, 1)

    def _return(self, ret: SaleReturn) -> None:
        self.returns_count += 1
        self.returns_minor += ret.refund_minor
        self.rounding_minor -= ret.rounding_minor
        for tender in ret.refunds:
            _add(self.by_tender, tender.kind.value, -tender.amount_minor)
            if tender.kind is TenderKind.CASH:
                self.cash_drawer_minor -= tender.amount_minor
        for line in ret.lines:
            _add(self.by_department, line.department, -line.refund_minor)
        for row in ret.tax_rows:
            _add_tax(self.by_tax_rate, row, -1)

    def move_cash(
        self, direction: CashDirection, amount_minor: int, *, reason: str, by: str, at: datetime
    ) -> CashMoved:
        """Cash in or out of the drawer; returns the record to journal (already folded in)."""
        if amount_minor <= 0:
            raise ShiftError(shift_id=self.opened.shift_id, reason="cash moves must be positive")
        moved = CashMoved(self.opened.shift_id, direction, amount_minor, reason, by, at)
        self.record(moved)
        return moved

    @property
    def expected_cash_minor(self) -> int:
        return self.opened.float_minor + self.cash_drawer_minor

    def _report(self, kind: ReportKind, at: datetime, counted: int | None) -> ShiftReport:
        def buckets(d: dict[str, tuple[int, int]]) -> tuple[Bucket, ...]:
            return tuple(Bucket(k, a, c) for k, (a, c) in sorted(d.items()))

        o = self.opened
        return ShiftReport(
            report=kind,
            shift_id=o.shift_id,
            register_id=o.register_id,
            currency=o.currency,
            exponent=o.exponent,
            opened_at=o.opened_at,
            at=at,
            float_minor=o.float_minor,
            sales_count=self.sales_count,
            returns_count=self.returns_count,
            voided_sales_count=self.voided_sales_count,
            voided_lines_count=self.voided_lines_count,
            sales_minor=self.sales_minor,
            returns_minor=self.returns_minor,
            discounts_minor=self.discounts_minor,
            rounding_minor=self.rounding_minor,
            cash_in_minor=self.cash_in_minor,
            cash_out_minor=self.cash_out_minor,
            by_tender=buckets(self.by_tender),
            by_tax_rate=tuple(row for _, row in sorted(self.by_tax_rate.items())),
            by_department=buckets(self.by_department),
            expected_cash_minor=self.expected_cash_minor,
            counted_cash_minor=counted,
            variance_minor=None if counted is None else counted - self.expected_cash_minor,
        )

    def x_report(self, *, at: datetime) -> ShiftReport:
        """The mid-shift read; changes nothing."""
        return self._report(ReportKind.X, at, None)

    def close(
        self, *, counted_cash_minor: int, by: str, at: datetime
    ) -> tuple[ShiftClosed, ShiftReport]:
        """Close with the counted drawer; returns the record and the Z report to journal."""
        if self.closed is not None:
            raise ShiftError(shift_id=self.opened.shift_id, reason="shift is already closed")
        report = self._report(ReportKind.Z, at, counted_cash_minor)
        self.closed = ShiftClosed(
            shift_id=self.opened.shift_id,
            closed_by=by,
            closed_at=at,
            expected_cash_minor=report.expected_cash_minor,
            counted_cash_minor=counted_cash_minor,
            variance_minor=counted_cash_minor - report.expected_cash_minor,
        )
        return self.closed, report


def open_shift(
    *,
    shift_id: str,
    register_id: str,
    opened_by: str,
    opened_at: datetime,
    currency: str,
    exponent: int,
    float_minor: int,
) -> tuple[Shift, ShiftOpened]:
    """Open a shift with a counted float; returns the shift and the record to journal."""
    if float_minor < 0:
        raise ShiftError(shift_id=shift_id, reason="the float cannot be negative")
    opened = ShiftOpened(
        shift_id, register_id, opened_by, opened_at, currency, exponent, float_minor
    )
    return Shift(opened), opened
