"""Low-stock alerts: one alert per crossing of a level's threshold, in the fleet's alert list.

How it works: a level with a threshold (``stock_on_hand.low_at``) is *low* when its on-hand is
at or under it. The projection calls :func:`apply_crossings` with each figure's value before and
after the records it folded, in the same transaction: a figure that goes from above the
threshold to at-or-under opens a ``low_stock`` alert (and enqueues its notifications, like every
alert); one that goes back above clears it. A figure that stays low opens nothing more, so a
store selling the last units one by one gets one alert, not one per sale; the next crossing
after a delivery gets a new one. The alert's ``open_key`` is per store and GTIN (UNIQUE while
open), and its device is the register whose record made the crossing. The fleet evaluator
leaves this kind alone (it opens and clears only its own kinds).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.alerts.tables import alerts
from control_plane.notifications.outbox import enqueue_alert

log = logging.getLogger(__name__)

KIND = "low_stock"
OPENED = Counter("storefleet_stock_low_alerts", "Low-stock alerts opened (threshold crossings)")


@dataclass(frozen=True, slots=True)
class Crossing:
    """A figure before and after a change, and its threshold."""

    gtin: str
    before: int
    after: int
    low_at: int | None
    item_id: str | None = None


def open_key(store_id: str, gtin: str) -> str:
    """The alert's key while open: one open low-stock alert per store and GTIN."""
    return f"stock {store_id} {gtin}"


async def apply_crossings(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    store_id: str,
    device_id: str,
    changes: Iterable[Crossing],
    now_ms: int,
) -> int:
    """Open an alert for each figure that went low, clear it for each that recovered."""
    opened = 0
    for change in changes:
        if change.low_at is None:
            continue
        was_low, is_low = change.before <= change.low_at, change.after <= change.low_at
        if is_low and not was_low:
            opened += await _open(conn, tenant_id, store_id, device_id, change, now_ms)
        elif was_low and not is_low:
            await _clear(conn, store_id, change.gtin, now_ms)
    return opened


async def _open(
    conn: AsyncConnection,
    tenant_id: str,
    store_id: str,
    device_id: str,
    change: Crossing,
    now_ms: int,
) -> int:
    key = open_key(store_id, change.gtin)
    if (await conn.execute(select(alerts.c.id).where(alerts.c.open_key == key))).first():
        return 0
    item = f" (item {change.item_id})" if change.item_id else ""
    row = {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "store_id": store_id,
        "device_id": device_id,
        "kind": KIND,
        "open_key": key,
        "detail": f"GTIN {change.gtin}{item}: {change.after} on hand, threshold {change.low_at}",
        "opened_at": now_ms,
        "seen_at": now_ms,
    }
    await conn.execute(insert(alerts).values(**row))
    await enqueue_alert(conn, alert=row, event="opened", now_ms=now_ms)
    OPENED.inc()
    log.info("low stock in store %s: %s", store_id, row["detail"])
    return 1


async def _clear(conn: AsyncConnection, store_id: str, gtin: str, now_ms: int) -> None:
    key = open_key(store_id, gtin)
    found = (await conn.execute(select(alerts).where(alerts.c.open_key == key))).mappings().first()
    if found is None:
        return
    await conn.execute(
        update(alerts).where(alerts.c.id == found["id"]).values(cleared_at=now_ms, open_key=None)
    )
    await enqueue_alert(conn, alert={**found, "cleared_at": now_ms}, event="cleared", now_ms=now_ms)
