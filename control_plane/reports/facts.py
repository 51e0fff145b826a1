"""The journal records a report folds, read in scope and decoded into plain facts.

How it works: :func:`read_facts` selects, store by store, the checkout records of the store's
devices whose journal ``ts`` falls inside the period's bounds in that store's time zone, and
decodes each body into a frozen fact. Money stays integer minor units as the register wrote it;
nothing is recomputed from prices. A ``sale.completed`` record carries the register's full sale
under ``checkout``; a sale booked without it (the simulated register) still counts with the
ledger's summary (total, tenders, lines), without discounts, tax or a cashier. A body that is not
what the register writes is skipped and counted (``storefleet_report_records_skipped_total``),
never guessed at: the ingest already refused sales the cloud cannot store.

Reading is scoped twice: the stores come from :func:`stores_in_scope` (the principal's tenant)
and every record is joined to its device's store, so a foreign tenant's record is never read.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.errors import StoreNotFound
from control_plane.devices.tables import devices, stores, tenants
from control_plane.ingest.tables import journal
from control_plane.reports.period import Period
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.vocabulary import JournalKind

log = logging.getLogger(__name__)

SKIPPED = Counter(
    "storefleet_report_records_skipped",
    "Journal records a report could not read (not the register's shape), by kind",
    ["kind"],
)

K = JournalKind
#: Rows fetched per round trip while reading a period.
PAGE = 2000
#: The kinds reports fold.
KINDS = (
    K.SALE_COMPLETED,
    K.SALE_RETURNED,
    K.SALE_VOIDED,
    K.SHIFT_OPENED,
    K.SHIFT_CASH_MOVED,
    K.SHIFT_CLOSED,
    K.REPORT_Z,
    K.DRAWER_OPENED,
    K.STOCK_COUNT_COMMITTED,
)


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A store a report covers, with what reading its figures needs."""

    id: str
    tenant_id: str
    name: str
    timezone: str
    currency: str


@dataclass(frozen=True, slots=True)
class Where:
    """Where and when a record was written: store, register, journal position, time."""

    store_id: str
    device_id: str
    register: str
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class Line:
    """A sold (or, negative, returned) line: what the customer paid for it, tax included."""

    item_id: str
    name: str
    department: str
    quantity: Decimal
    gross_minor: int
    discount_minor: int
    total_minor: int
    approved: bool


@dataclass(frozen=True, slots=True)
class TaxPart:
    """One tax rate of a sale or return: net + tax = gross."""

    rate: Decimal
    net_minor: int
    tax_minor: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class Sale:
    """A completed sale (``sale.completed``)."""

    at: Where
    sale_id: str
    shift_id: str
    cashier: str
    total_minor: int
    discount_minor: int
    tax_minor: int
    rounding_minor: int
    voided_lines: int
    lines: tuple[Line, ...]
    tenders: tuple[tuple[str, int], ...]
    taxes: tuple[TaxPart, ...]
    manual_discounts: int
    overrides: int


@dataclass(frozen=True, slots=True)
class Return:
    """A return (``sale.returned``); amounts positive, as refunded."""

    at: Where
    shift_id: str
    cashier: str
    refund_minor: int
    tax_minor: int
    rounding_minor: int
    with_receipt: bool
    approved: bool
    lines: tuple[Line, ...]
    refunds: tuple[tuple[str, int], ...]
    taxes: tuple[TaxPart, ...]


@dataclass(frozen=True, slots=True)
class Void:
    """A sale abandoned before payment (``sale.voided``)."""

    at: Where
    shift_id: str
    cashier: str
    total_minor: int
    approved: bool


@dataclass(frozen=True, slots=True)
class CashMove:
    """Cash into (``in``) or out of the drawer outside a sale."""

    at: Where
    shift_id: str
    direction: str
    amount_minor: int
    by: str


@dataclass(frozen=True, slots=True)
class ShiftOpened:
    at: Where
    shift_id: str
    float_minor: int


@dataclass(frozen=True, slots=True)
class ShiftClosed:
    at: Where
    shift_id: str
    expected_minor: int
    counted_minor: int
    variance_minor: int


@dataclass(frozen=True, slots=True)
class ZReport:
    """The register's own closing report, as it journaled it (compared, never summed)."""

    at: Where
    shift_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DrawerOpened:
    """The drawer opened outside a sale, with who and why."""

    at: Where
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class StockCount:
    """A committed RFID count: its variance report as the appliance wrote it."""

    at: Where
    body: dict[str, Any]


@dataclass(slots=True)
class Facts:
    """Everything a report folds, of the stores in scope, in the period."""

    stores: dict[str, StoreInfo]
    sales: list[Sale] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)
    voids: list[Void] = field(default_factory=list)
    cash_moves: list[CashMove] = field(default_factory=list)
    shifts_opened: list[ShiftOpened] = field(default_factory=list)
    shifts_closed: list[ShiftClosed] = field(default_factory=list)
    z_reports: list[ZReport] = field(default_factory=list)
    drawer_opens: list[DrawerOpened] = field(default_factory=list)
    stock_counts: list[StockCount] = field(default_factory=list)
    skipped: int = 0


async def stores_in_scope(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, store_id: str | None = None
) -> dict[str, StoreInfo]:
    """The stores a report covers: the scope's, or the one asked for (404 when not visible)."""
    query = (
        select(
            stores.c.id, stores.c.tenant_id, stores.c.name, stores.c.timezone, tenants.c.currency
        )
        .join(tenants, tenants.c.id == stores.c.tenant_id)
        .where(scope.where(stores.c.tenant_id))
        .order_by(stores.c.id)
    )
    if store_id is not None:
        query = query.where(stores.c.id == store_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    if store_id is not None and not rows:
        raise StoreNotFound(store_id)
    return {
        row.id: StoreInfo(row.id, row.tenant_id, row.name, row.timezone, row.currency)
        for row in rows
    }


async def read_facts(
    engine: AsyncEngine,
    *,
    stores_: dict[str, StoreInfo],
    period: Period,
    device_id: str | None = None,
    kinds: Sequence[str] = KINDS,
) -> Facts:
    """The records of ``stores_`` (optionally one register) inside ``period``, decoded."""
    facts = Facts(stores=stores_)
    async with engine.connect() as conn:
        for store in stores_.values():
            start, end = period.bounds(store.timezone)
            query = (
                select(
                    journal.c.device_id,
                    journal.c.seq,
                    journal.c.kind,
                    journal.c.ts,
                    journal.c.body,
                    devices.c.register_name,
                )
                .join(devices, devices.c.id == journal.c.device_id)
                .where(
                    devices.c.store_id == store.id,
                    devices.c.tenant_id == store.tenant_id,
                    journal.c.kind.in_([str(kind) for kind in kinds]),
                    journal.c.ts >= start,
                    journal.c.ts < end,
                )
                .order_by(journal.c.device_id, journal.c.seq)
            )
            if device_id is not None:
                query = query.where(journal.c.device_id == device_id)
            result = await conn.stream(query.execution_options(yield_per=PAGE))
            async for page in result.partitions(PAGE):  # a page per await, not a row
                for row in page:
                    where = Where(
                        store.id, row.device_id, row.register_name or row.device_id, row.seq, row.ts
                    )
                    _fold(facts, row.kind, where, row.body)
    return facts


def _fold(facts: Facts, kind: str, at: Where, text: str) -> None:
    try:
        body = json.loads(text)
    except ValueError as err:
        _skipped(facts, kind, at, err)
        return
    decode_into(facts, kind, at, body)


def decode_into(facts: Facts, kind: str, at: Where, body: object) -> None:
    """Add the record's fact to ``facts``; a body that is not the register's is skipped."""
    try:
        if not isinstance(body, dict):
            raise TypeError("the body is not an object")
        _decode(facts, kind, at, body)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as err:
        _skipped(facts, kind, at, err)


def _skipped(facts: Facts, kind: str, at: Where, err: Exception) -> None:
    facts.skipped += 1
    SKIPPED.labels(kind).inc()
    log.warning(
        "report skipped %s seq %d of %s: %s (a body the register does not write; "
        "compare it with the appliance's ledger)",
        kind,
        at.seq,
        at.device_id,
        err,
    )


#: The largest amount a report sums (any sum of a store's amounts stays inside a BIGINT).
MAX_AMOUNT = 2**53


def _int(value: Any) -> int:
    """An amount as the register wrote it: an int, never a float or a string, nor absurd."""
    if type(value) is not int:
        raise TypeError(f"expected an integer amount, got {type(value).__name__}")
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"amount {value} is beyond any till's")
    return value


def _tender(kind: Any) -> str:
    """A tender's kind as a rollup column holds it (64 characters)."""
    return str(kind)[:64]


def _decode(facts: Facts, kind: str, at: Where, body: dict[str, Any]) -> None:
    if kind == K.SALE_COMPLETED:
        facts.sales.append(_sale(at, body))
    elif kind == K.SALE_RETURNED:
        facts.returns.append(_return(at, body))
    elif kind == K.SALE_VOIDED:
        facts.voids.append(
            Void(
                at,
                str(body["shift_id"]),
                str(body["cashier_id"]),
                _int(body["total_minor"]),
                body.get("approved_by") is not None,
            )
        )
    elif kind == K.SHIFT_CASH_MOVED:
        direction = str(body["direction"])
        if direction not in ("in", "out"):
            raise ValueError(f"cash moved {direction!r}, not in or out")
        facts.cash_moves.append(
            CashMove(
                at, str(body["shift_id"]), direction, _int(body["amount_minor"]), str(body["by"])
            )
        )
    elif kind == K.SHIFT_OPENED:
        facts.shifts_opened.append(
            ShiftOpened(at, str(body["shift_id"]), _int(body["float_minor"]))
        )
    elif kind == K.SHIFT_CLOSED:
        facts.shifts_closed.append(
            ShiftClosed(
                at,
                str(body["shift_id"]),
                _int(body["expected_cash_minor"]),
                _int(body["counted_cash_minor"]),
                _int(body["variance_minor"]),
            )
        )
    elif kind == K.REPORT_Z:
        facts.z_reports.append(ZReport(at, str(body["shift_id"]), body))
    elif kind == K.DRAWER_OPENED:
        facts.drawer_opens.append(
            DrawerOpened(at, str(body.get("by", "")), str(body.get("reason", "")))
        )
    elif kind == K.STOCK_COUNT_COMMITTED:
        facts.stock_counts.append(StockCount(at, body))


@functools.lru_cache(maxsize=1024)
def _decimal(text: str) -> Decimal:
    """A rate or quantity as written (few distinct values: parsed once each); a number no till
    writes (not finite, or beyond a billion) is refused, so a rollup's sum stays a BIGINT."""
    value = Decimal(text)
    if not value.is_finite() or abs(value) > MAX_QUANTITY:
        raise ValueError(f"{text[:20]} is no quantity or rate a register writes")
    return value


#: The largest quantity or rate a report reads (in millionths, any store's sum stays a BIGINT).
MAX_QUANTITY = 10**9


#: The longest tax rate a report keys by (a rollup's ``rate`` column).
MAX_RATE_TEXT = 40


def _rate(value: Any) -> Decimal:
    """A tax rate as written; a rate longer than any tax authority's is not the register's."""
    text = str(value)
    if len(text) > MAX_RATE_TEXT:
        raise ValueError(f"tax rate {text[:20]}… is longer than {MAX_RATE_TEXT} characters")
    return _decimal(text)


def _taxes(rows: list[dict[str, Any]]) -> tuple[TaxPart, ...]:
    return tuple(
        TaxPart(
            _rate(row["rate"]),
            _int(row["net_minor"]),
            _int(row["tax_minor"]),
            _int(row["gross_minor"]),
        )
        for row in rows
    )


def _sale(at: Where, body: dict[str, Any]) -> Sale:
    detail = body.get("checkout")
    if not isinstance(detail, dict):
        return _summary_sale(at, body)
    lines = tuple(
        Line(
            str(line["item_id"]),
            str(line["name"]),
            str(line["department"]),
            _decimal(str(line["quantity"])),
            _int(line["gross_minor"]),
            _int(line["discount_minor"]),
            _int(line["total_minor"]),
            line.get("approved_by") is not None,
        )
        for line in detail["lines"]
    )
    basket = _int(detail["basket_discount_minor"])
    line_discount = _int(detail["line_discount_minor"])
    manual = sum(1 for line in lines if line.discount_minor and line.approved) + (
        1 if basket and detail.get("basket_approved_by") is not None else 0
    )
    return Sale(
        at=at,
        sale_id=str(detail["sale_id"]),
        shift_id=str(detail["shift_id"]),
        cashier=str(detail["cashier_id"]),
        total_minor=_int(detail["total_minor"]),
        discount_minor=line_discount + basket,
        tax_minor=_int(detail["tax_minor"]),
        rounding_minor=_int(detail["rounding_minor"]),
        voided_lines=_int(detail["voided_lines"]),
        lines=lines,
        tenders=tuple((_tender(t["kind"]), _int(t["amount_minor"])) for t in detail["tenders"]),
        taxes=_taxes(detail["tax_rows"]),
        manual_discounts=manual,
        overrides=sum(1 for line in lines if line.approved)
        + (1 if detail.get("basket_approved_by") is not None else 0),
    )


def _summary_sale(at: Where, body: dict[str, Any]) -> Sale:
    """A sale booked without the checkout's detail: the ledger's summary is all there is."""
    total = _int(body["total_minor"])
    change = _int(body["change_minor"])
    tenders = [(_tender(t["kind"]), _int(t["amount_minor"])) for t in body["tenders"]]
    if tenders and change:  # the summary's tenders include the change handed back
        kind, amount = tenders[-1]
        tenders[-1] = (kind, amount - change)
    lines = tuple(
        Line(
            str(line["sku"]),
            str(line["description"]),
            "",
            _decimal(str(line["quantity"])),
            _int(line["amount_minor"]),
            0,
            _int(line["amount_minor"]),
            False,
        )
        for line in body["lines"]
    )
    return Sale(
        at=at,
        sale_id=str(body["sale_id"]),
        shift_id="",
        cashier="",
        total_minor=total,
        discount_minor=0,
        tax_minor=0,
        rounding_minor=0,
        voided_lines=0,
        lines=lines,
        tenders=tuple(tenders),
        taxes=(),
        manual_discounts=0,
        overrides=0,
    )


def _return(at: Where, body: dict[str, Any]) -> Return:
    lines = tuple(
        Line(
            str(line["item_id"]),
            str(line["name"]),
            str(line["department"]),
            _decimal(str(line["quantity"])),
            _int(line["refund_minor"]),
            0,
            _int(line["refund_minor"]),
            False,
        )
        for line in body["lines"]
    )
    rows: dict[Decimal, list[int]] = {}
    for line in body["lines"]:
        rate = _rate(line["tax_rate"])
        gross, tax = rows.setdefault(rate, [0, 0]), _int(line["tax_minor"])
        gross[0] += _int(line["refund_minor"])
        gross[1] += tax
    taxes = tuple(TaxPart(rate, g - t, t, g) for rate, (g, t) in sorted(rows.items()))
    return Return(
        at=at,
        shift_id=str(body["shift_id"]),
        cashier=str(body["cashier_id"]),
        refund_minor=_int(body["refund_minor"]),
        tax_minor=_int(body["tax_minor"]),
        rounding_minor=_int(body["rounding_minor"]),
        with_receipt=body.get("original_sale_id") is not None,
        approved=body.get("approved_by") is not None,
        lines=lines,
        refunds=tuple((_tender(t["kind"]), _int(t["amount_minor"])) for t in body["refunds"]),
        taxes=taxes,
    )
