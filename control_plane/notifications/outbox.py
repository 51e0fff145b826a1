"""The durable outbox of notifications: written with the alert, claimed with a lease, finished.

How it works: :func:`enqueue_alert` runs inside the evaluator's transaction, so an alert that is
opened (or cleared) and its notifications commit together or not at all — a restart between the
two cannot lose one. :func:`claim` is one UPDATE that leases up to ``limit`` due rows to a
worker (``lease_owner``, ``lease_until``): on PostgreSQL its candidate SELECT is ``FOR UPDATE
SKIP LOCKED``, so two instances claim disjoint rows without waiting; on SQLite the UPDATE takes
the database's single write lock, so two claims run one after the other and the second finds the
rows leased. A row whose worker died keeps its lease only until ``lease_until``; then any worker
claims it again (at least once: receivers de-duplicate on the delivery id).
:func:`finish` writes the outcome only while the row is still the worker's.

The lease itself (:func:`lease_due`, :func:`finish_attempt`) is the one mechanism of every
outbox table with the same columns — ``id``, ``status`` (``pending`` until an outcome),
``attempts``, ``next_at``, ``lease_owner``, ``lease_until``, ``last_error``, ``done_at``: the
digital receipts' outbox (control_plane/customers/receipts.py) claims and finishes through it too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Row,
    RowMapping,
    Select,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.notifications.channels import severity_of, wants
from control_plane.notifications.tables import notification_channels, notification_outbox
from control_plane.tenancy import TenantScope

SCHEMA = "sf.alert_notification"
VERSION = 1
Event = Literal["opened", "cleared", "test"]
Outcome = Literal["sent", "retry", "failed"]
_ALERT_FIELDS = ("id", "kind", "tenant_id", "store_id", "device_id", "detail", "opened_at")


def payload(delivery_id: str, *, event: Event, alert: Mapping[str, Any], now_ms: int) -> str:
    """The JSON body a receiver gets (fixed once enqueued: it is what the signature covers)."""
    body = {
        "schema": SCHEMA,
        "v": VERSION,
        "delivery_id": delivery_id,
        "event": event,
        "at": now_ms,
        "alert": {
            **{name: alert.get(name) for name in _ALERT_FIELDS},
            "severity": severity_of(str(alert.get("kind"))),
            "cleared_at": alert.get("cleared_at"),
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


async def enqueue_alert(
    conn: AsyncConnection, *, alert: Mapping[str, Any], event: Event, now_ms: int
) -> int:
    """One pending delivery per channel of the alert's tenant that wants it; how many."""
    channels = (
        (
            await conn.execute(
                select(notification_channels).where(
                    notification_channels.c.tenant_id == alert["tenant_id"]
                )
            )
        )
        .mappings()
        .all()
    )
    rows = []
    for channel in channels:
        if not wants(channel, kind=str(alert["kind"]), event=event):
            continue
        delivery_id = uuid.uuid4().hex
        rows.append(
            {
                "id": delivery_id,
                "channel_id": channel["id"],
                "tenant_id": alert["tenant_id"],
                "alert_id": alert["id"],
                "event": event,
                "payload": payload(delivery_id, event=event, alert=alert, now_ms=now_ms),
                "status": "pending",
                "attempts": 0,
                "next_at": now_ms,
                "created_at": now_ms,
            }
        )
    if rows:
        await conn.execute(insert(notification_outbox), rows)
    return len(rows)


async def enqueue_test(engine: AsyncEngine, *, channel: Mapping[Any, Any], now_ms: int) -> str:
    """A test delivery to ``channel`` (an alert that does not exist, marked as a test)."""
    delivery_id = uuid.uuid4().hex
    alert = {
        "id": f"test-{delivery_id}",
        "kind": "silent",
        "tenant_id": channel["tenant_id"],
        "store_id": "(test)",
        "device_id": "(test)",
        "detail": "a test notification sent from the console; no device is affected",
        "opened_at": now_ms,
    }
    async with engine.begin() as conn:
        await conn.execute(
            insert(notification_outbox).values(
                id=delivery_id,
                channel_id=channel["id"],
                tenant_id=channel["tenant_id"],
                alert_id=alert["id"],
                event="test",
                payload=payload(delivery_id, event="test", alert=alert, now_ms=now_ms),
                status="pending",
                attempts=0,
                next_at=now_ms,
                created_at=now_ms,
            )
        )
    return delivery_id


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this worker, with the channel it goes to."""

    id: str
    event: str
    payload: str
    attempts: int
    channel_id: str
    kind: str
    url: str | None
    secret: str | None
    recipients: tuple[str, ...]


def _claimable(table: Table, now_ms: int) -> ColumnElement[bool]:
    """Due, still pending, and leased to nobody (or a lease that ran out)."""
    c = table.c
    return and_(
        c.status == "pending",
        c.next_at <= now_ms,
        or_(c.lease_until.is_(None), c.lease_until < now_ms),
    )


async def lease_due(
    engine: AsyncEngine,
    table: Table,
    *,
    owner: str,
    now_ms: int,
    lease_ms: int,
    limit: int,
    leased: Select[Any],
) -> Sequence[Row[Any]]:
    """Lease up to ``limit`` due rows of ``table`` to ``owner`` and read them with ``leased``.

    ``leased`` names the columns (and joins) the worker needs; this adds "leased to me just
    now", so a row another worker leased in between is never read as ours.
    """
    c = table.c
    until = now_ms + lease_ms
    # The candidates are a materialized CTE: as a plain subquery under IN, PostgreSQL may run
    # it again for each row it updates, and with SKIP LOCKED each run skips the rows the last
    # one locked, so ``limit`` leased every due row (3 of 3 with limit 1, seen here).
    candidates = (
        select(c.id)
        .where(_claimable(table, now_ms))
        .order_by(c.next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's write lock does the same
        .cte(f"{table.name}_due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    async with engine.begin() as conn:
        await conn.execute(
            update(table)
            .where(c.id.in_(select(candidates.c.id)), _claimable(table, now_ms))
            .values(lease_owner=owner, lease_until=until)
        )
        mine = leased.where(c.lease_owner == owner, c.lease_until == until, c.status == "pending")
        rows: Sequence[Row[Any]] = (await conn.execute(mine)).all()
    return rows


async def finish_attempt(
    engine: AsyncEngine,
    table: Table,
    *,
    row_id: str,
    owner: str,
    outcome: str,
    now_ms: int,
    error: str | None = None,
    retry_at: int | None = None,
    counted: bool = True,
) -> bool:
    """Record one attempt's outcome; False when the lease was lost (another worker has it).

    ``retry``: pending again from ``retry_at`` (default now); any other outcome is the row's
    final status. ``counted``: whether it was an attempt (one that was skipped is not).
    """
    c = table.c
    values: dict[str, Any] = {
        "attempts": c.attempts + (1 if counted else 0),
        "lease_owner": None,
        "lease_until": None,
        "last_error": None if error is None else error[:2000],
    }
    if outcome == "retry":
        values["next_at"] = now_ms if retry_at is None else retry_at
    else:
        values["status"] = outcome
        values["done_at"] = now_ms
    async with engine.begin() as conn:
        result = await conn.execute(
            update(table)
            .where(c.id == row_id, c.lease_owner == owner, c.status == "pending")
            .values(**values)
        )
    return bool(result.rowcount)


async def claim(
    engine: AsyncEngine, *, owner: str, now_ms: int, lease_ms: int, limit: int
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``owner``; see the module's docstring."""
    rows = await lease_due(
        engine,
        notification_outbox,
        owner=owner,
        now_ms=now_ms,
        lease_ms=lease_ms,
        limit=limit,
        leased=select(
            notification_outbox.c.id,
            notification_outbox.c.event,
            notification_outbox.c.payload,
            notification_outbox.c.attempts,
            notification_channels.c.id.label("channel_id"),
            notification_channels.c.kind,
            notification_channels.c.url,
            notification_channels.c.secret,
            notification_channels.c.recipients,
        ).join(
            notification_channels,
            notification_channels.c.id == notification_outbox.c.channel_id,
        ),
    )
    return [
        Claimed(
            id=row.id,
            event=row.event,
            payload=row.payload,
            attempts=int(row.attempts),
            channel_id=row.channel_id,
            kind=row.kind,
            url=row.url,
            secret=row.secret,
            recipients=tuple(a for a in str(row.recipients or "").split(",") if a),
        )
        for row in rows
    ]


async def finish(
    engine: AsyncEngine,
    *,
    delivery_id: str,
    owner: str,
    outcome: Outcome,
    now_ms: int,
    error: str | None = None,
    retry_at: int | None = None,
) -> bool:
    """Record one attempt's outcome; False when the lease was lost (another worker has it)."""
    return await finish_attempt(
        engine,
        notification_outbox,
        row_id=delivery_id,
        owner=owner,
        outcome=outcome,
        now_ms=now_ms,
        error=error,
        retry_at=retry_at,
    )


async def list_deliveries(
    engine: AsyncEngine, *, scope: TenantScope, channel_id: str, limit: int = 20
) -> Sequence[RowMapping]:
    """A channel's newest deliveries (status, attempts, last error), for the console."""
    query = (
        select(notification_outbox)
        .where(
            notification_outbox.c.channel_id == channel_id,
            scope.where(notification_outbox.c.tenant_id),
        )
        .order_by(notification_outbox.c.created_at.desc(), notification_outbox.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


async def prune(engine: AsyncEngine, *, before_ms: int) -> int:
    """Forget sent and failed deliveries finished before ``before_ms``; how many went."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(notification_outbox).where(
                notification_outbox.c.status.in_(("sent", "failed")),
                notification_outbox.c.done_at < before_ms,
            )
        )
    return int(result.rowcount)
