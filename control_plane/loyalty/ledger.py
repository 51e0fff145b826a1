"""Booking movements into the loyalty ledger, inside the caller's transaction.

How it works: :func:`book` inserts the movements (each UNIQUE by ``source``) and adds each
customer's sum to ``loyalty_balances`` with one atomic ``INSERT … ON CONFLICT DO UPDATE``
(``points = points + Δ``), so two ingest workers booking sales of the same customer from two
stores at once both count, in either order. The new balance is read back in the same statement
(``RETURNING``); from it the tier is recomputed (lifetime points against the programme's
thresholds) and the overdraft set or cleared. A balance below zero is never refused: the sales
that made it already happened at the till (offline, against the balance the register last saw),
so the ledger records the overdraft — which device's redemption took it below zero, when — and
the alerts raise it (:mod:`control_plane.loyalty.overdraft`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import insert, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.loyalty.programme import programme_rules
from control_plane.loyalty.tables import loyalty_balances, loyalty_movements
from protocols.loyalty import tier_for

log = logging.getLogger(__name__)

OVERDRAFTS = Counter(
    "storefleet_loyalty_overdrafts",
    "Customer balances taken below zero by a redemption (offline at two stores)",
    ["what"],
)


class MovementKind(enum.StrEnum):
    """What moved a balance; the console lists movements by these words."""

    EARN = "earn"
    #: points a return took back from what its sale earned (they count against the tier too)
    EARN_REVERSAL = "earn_reversal"
    BURN = "burn"
    CREDIT_ISSUE = "credit_issue"
    CREDIT_REDEEM = "credit_redeem"
    ADJUST = "adjust"


@dataclass(frozen=True, slots=True, kw_only=True)
class Movement:
    """One movement: ``points`` and ``credit_minor`` are signed (a burn is negative)."""

    source: str
    tenant_id: str
    customer_id: str
    kind: MovementKind
    at: int
    points: int = 0
    credit_minor: int = 0
    store_id: str | None = None
    device_id: str | None = None
    sale_id: str | None = None
    actor: str | None = None
    reason: str | None = None

    @property
    def earned(self) -> int:
        """Points that count towards the tier (earning, less what returns took back)."""
        return self.points if self.kind in (MovementKind.EARN, MovementKind.EARN_REVERSAL) else 0


@dataclass(frozen=True, slots=True)
class Balance:
    """A customer's balance after a booking."""

    points: int
    lifetime_points: int
    credit_minor: int
    tier: str


def _upsert(conn: AsyncConnection, **values: object) -> PgInsert | SqliteInsert:
    """The dialect's INSERT that can say ON CONFLICT DO UPDATE."""
    if conn.dialect.name == "postgresql":
        return pg_insert(loyalty_balances).values(**values)
    return sqlite_insert(loyalty_balances).values(**values)


async def book(conn: AsyncConnection, movements: Sequence[Movement]) -> dict[str, Balance]:
    """Book ``movements`` (of one tenant or several); the new balance of each customer touched."""
    if not movements:
        return {}
    await conn.execute(
        insert(loyalty_movements),
        [
            {
                "source": m.source,
                "tenant_id": m.tenant_id,
                "customer_id": m.customer_id,
                "kind": m.kind.value,
                "points": m.points,
                "credit_minor": m.credit_minor,
                "store_id": m.store_id,
                "device_id": m.device_id,
                "sale_id": m.sale_id,
                "actor": m.actor,
                "reason": m.reason,
                "at": m.at,
            }
            for m in movements
        ],
    )
    sums: dict[tuple[str, str], list[int]] = {}
    last: dict[tuple[str, str], Movement] = {}
    for m in movements:
        key = (m.tenant_id, m.customer_id)
        total = sums.setdefault(key, [0, 0, 0])
        total[0] += m.points
        total[1] += m.earned
        total[2] += m.credit_minor
        last[key] = m
    balances: dict[str, Balance] = {}
    for (tenant_id, customer_id), (points, earned, credit) in sums.items():
        balances[customer_id] = await _add(
            conn,
            tenant_id=tenant_id,
            customer_id=customer_id,
            points=points,
            earned=earned,
            credit=credit,
            cause=last[(tenant_id, customer_id)],
        )
    return balances


async def _add(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    customer_id: str,
    points: int,
    earned: int,
    credit: int,
    cause: Movement,
) -> Balance:
    table = loyalty_balances
    insert_row = _upsert(
        conn,
        tenant_id=tenant_id,
        customer_id=customer_id,
        points=points,
        lifetime_points=earned,
        credit_minor=credit,
        tier="",
        updated_at=cause.at,
    )
    statement = insert_row.on_conflict_do_update(
        index_elements=[table.c.tenant_id, table.c.customer_id],
        set_={
            "points": table.c.points + points,
            "lifetime_points": table.c.lifetime_points + earned,
            "credit_minor": table.c.credit_minor + credit,
            "updated_at": cause.at,
        },
    ).returning(
        table.c.points,
        table.c.lifetime_points,
        table.c.credit_minor,
        table.c.tier,
        table.c.overdrawn_at,
    )
    row = (await conn.execute(statement)).one()
    rules = await programme_rules(conn, tenant_id)
    tier = tier_for(rules, int(row.lifetime_points)).name
    changes: dict[str, object] = {}
    if tier != row.tier:
        changes["tier"] = tier
    overdrawn = row.points < 0 or row.credit_minor < 0
    if overdrawn and (points < 0 or credit < 0):
        changes |= {
            "overdraft_device_id": cause.device_id,
            "overdraft_store_id": cause.store_id,
            "overdrawn_at": cause.at,
        }
        what = "points" if row.points < 0 else "store_credit"
        OVERDRAFTS.labels(what).inc()
        log.warning(
            "loyalty: customer %s of tenant %s overdrawn (%s points, %s credit) by %s at %s:"
            " the sale stands; the overdraft alert asks an operator to settle it",
            customer_id,
            tenant_id,
            row.points,
            row.credit_minor,
            cause.sale_id or cause.source,
            cause.device_id or "the console",
        )
    elif not overdrawn and row.overdrawn_at is not None:
        changes |= {"overdraft_device_id": None, "overdraft_store_id": None, "overdrawn_at": None}
    if changes:
        await conn.execute(
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c.customer_id == customer_id)
            .values(**changes)
        )
    return Balance(int(row.points), int(row.lifetime_points), int(row.credit_minor), tier)
