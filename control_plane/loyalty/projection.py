"""The loyalty ledger projected at ingest: one narrow call per stored batch, same transaction.

How it works: the ingest stores a device's records exactly once (its high-water mark and
``UNIQUE(device_id, seq)``) and calls :func:`project` with the batch's accepted records in the
same transaction. A ``sale.completed`` with a ``customer_id`` books its points earned and burned
and its store credit redeemed; a ``sale.returned`` books the store credit it issued and the points
of its sale it took back.
Each movement's ``source`` is its journal record (``<device>/<seq>/<kind>``), so the ledger
counts it once and says where it came from. Records without a customer cost a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.loyalty.ledger import Movement, MovementKind, book
from protocols.loyalty import return_credit
from protocols.messages import JournalRecord
from protocols.sale_body import SaleBody
from protocols.vocabulary import JournalKind


def _source(device_id: str, seq: int, kind: MovementKind) -> str:
    return f"{device_id}/{seq}/{kind.value}"


def sale_movements(
    record: JournalRecord, sale: SaleBody, *, tenant_id: str, store_id: str, device_id: str
) -> list[Movement]:
    """The movements of one sale with a customer (none without one)."""
    if sale.customer_id is None or sale.loyalty is None:
        return []
    loyalty = sale.loyalty
    common: dict[str, Any] = {
        "tenant_id": tenant_id,
        "customer_id": sale.customer_id,
        "at": record.ts,
        "store_id": store_id,
        "device_id": device_id,
        "sale_id": sale.sale_id,
    }
    parts = (
        (MovementKind.EARN, loyalty.points_earned, 0),
        (MovementKind.BURN, -loyalty.points_burned, 0),
        (MovementKind.CREDIT_REDEEM, 0, -loyalty.store_credit_redeemed_minor),
    )
    return [
        Movement(
            source=_source(device_id, record.seq, kind),
            kind=kind,
            points=points,
            credit_minor=credit,
            **common,
        )
        for kind, points, credit in parts
        if points or credit
    ]


def return_movements(
    record: JournalRecord, *, tenant_id: str, store_id: str, device_id: str
) -> list[Movement]:
    """The store credit a return issued and the points it took back, if any."""
    try:
        credit = return_credit(record.body)
    except ValidationError:
        return []  # a return is booked whatever its loyalty keys say; the register checked them
    if credit is None:
        return []
    parts = (
        (MovementKind.CREDIT_ISSUE, 0, credit.store_credit_issued_minor),
        (MovementKind.EARN_REVERSAL, -credit.points_reversed, 0),
    )
    return [
        Movement(
            source=_source(device_id, record.seq, kind),
            tenant_id=tenant_id,
            customer_id=credit.customer_id,
            kind=kind,
            points=points,
            credit_minor=credit_minor,
            at=record.ts,
            store_id=store_id,
            device_id=device_id,
            sale_id=str(record.body.get("original_sale_id") or "") or None,
        )
        for kind, points, credit_minor in parts
        if points or credit_minor
    ]


async def project(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    store_id: str,
    device_id: str,
    records: Iterable[tuple[JournalRecord, SaleBody | None]],
) -> int:
    """Book the loyalty movements of a batch's accepted records; how many were booked."""
    movements: list[Movement] = []
    for record, sale in records:
        where = {"tenant_id": tenant_id, "store_id": store_id, "device_id": device_id}
        if sale is not None:
            if sale.customer_id is not None:
                movements += sale_movements(record, sale, **where)
        elif record.kind == JournalKind.SALE_RETURNED and "customer_id" in record.body:
            movements += return_movements(record, **where)
    await book(conn, movements)
    return len(movements)
