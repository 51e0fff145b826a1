"""The periodic evaluation: alerts opened, refreshed and cleared from the conditions of now.

How it works: :func:`evaluate` samples every live device's backlog and lag into its history
(the last :data:`HISTORY_MS`), asks :mod:`~control_plane.alerts.rules` which
conditions hold, then in one transaction: a condition without an open alert opens one; an open
alert whose condition still holds is refreshed (``seen_at``, ``detail``); an open alert whose
condition ended is cleared (``cleared_at``; its ``open_key`` released). Each opening and
clearing enqueues its notifications in the same transaction (``control_plane.notifications``:
nothing is told of an alert that did not commit, nothing committed goes untold). Running it
twice in a row changes nothing but ``seen_at``: it is idempotent. Several control-plane
instances may evaluate at once — the UNIQUE ``open_key`` lets only one of two racing inserts
open the alert; the other transaction is retried on the next tick. :func:`run_evaluator` is
the supervised loop (``control_plane.supervision``); a failed tick is counted, logged, and
tried again next time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.alerts.rules import KINDS, Thresholds, conditions, live_devices
from control_plane.alerts.tables import alerts, device_history
from control_plane.notifications.outbox import enqueue_alert

log = logging.getLogger(__name__)

OPENED = Counter("storefleet_alerts_opened", "Alerts opened, by kind", ["kind"])
CLEARED = Counter("storefleet_alerts_cleared", "Alerts cleared by themselves, by kind", ["kind"])
OPEN = Gauge("storefleet_alerts_open", "Alerts open after the last evaluation")
FAILED = Counter("storefleet_alert_evaluations_failed", "Evaluations that failed (retried)")

#: How far back history is kept: 12 hours (720 samples a device at one a minute).
HISTORY_MS = 12 * 3_600_000


@dataclass(frozen=True, slots=True)
class EvaluatorSettings:
    """How often to evaluate, and the rules' thresholds."""

    interval_s: float = 60.0
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation did."""

    opened: int
    cleared: int
    open: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def evaluate(
    engine: AsyncEngine, *, now_ms: int | None = None, limits: Thresholds | None = None
) -> Evaluation:
    """One evaluation of every live device; see the module's docstring."""
    now = _now_ms() if now_ms is None else now_ms
    limits = limits or Thresholds()
    async with engine.begin() as conn:
        rows = await live_devices(conn)
        await _sample(conn, rows, now)
    async with engine.begin() as conn:
        found = await conditions(conn, rows, now_ms=now, limits=limits)
        opened, cleared, still = await _apply(conn, rows, found, now)
    OPEN.set(still + opened)
    return Evaluation(opened=opened, cleared=cleared, open=still + opened)


async def _sample(conn: AsyncConnection, rows: dict[str, Any], now: int) -> None:
    """One history sample per live device; samples older than :data:`HISTORY_MS` dropped."""
    samples = [
        {
            "device_id": device_id,
            "at": now,
            "backlog": int(row["backlog"]),
            "lag_ms": row["lag_ms"],
            "ingest_lag_ms": row["ingest_lag_ms"],
        }
        for device_id, row in rows.items()
    ]
    if not samples:
        return
    existing = set(
        (
            await conn.execute(select(device_history.c.device_id).where(device_history.c.at == now))
        ).scalars()
    )
    fresh = [s for s in samples if s["device_id"] not in existing]
    if fresh:
        await conn.execute(insert(device_history), fresh)
    # one statement for every device: samples older than the window go
    await conn.execute(delete(device_history).where(device_history.c.at < now - HISTORY_MS))


async def _apply(
    conn: AsyncConnection,
    rows: dict[str, Any],
    found: dict[tuple[str, str], str],
    now: int,
) -> tuple[int, int, int]:
    open_rows = (
        await conn.execute(
            # only the kinds of these rules: another domain's alerts (low stock) clear themselves
            select(alerts).where(alerts.c.open_key.is_not(None), alerts.c.kind.in_(KINDS))
        )
    ).mappings()
    opened = cleared = still = 0
    known = set()
    for open_row in open_rows.all():
        alert_id, device_id, kind = open_row["id"], open_row["device_id"], open_row["kind"]
        key = (device_id, kind)
        known.add(key)
        if key in found:
            still += 1
            await conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(seen_at=now, detail=found[key])
            )
        else:
            cleared += 1
            CLEARED.labels(kind).inc()
            await conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(cleared_at=now, open_key=None)
            )
            cleared_row = {**open_row, "cleared_at": now}
            await enqueue_alert(conn, alert=cleared_row, event="cleared", now_ms=now)
    for (device_id, kind), detail in sorted(found.items()):
        if (device_id, kind) in known or device_id not in rows:
            continue
        row = rows[device_id]
        opened_row = {
            "id": uuid.uuid4().hex,
            "tenant_id": row["tenant_id"],
            "store_id": row["store_id"],
            "device_id": device_id,
            "kind": kind,
            "open_key": f"{device_id} {kind}",
            "detail": detail,
            "opened_at": now,
            "seen_at": now,
        }
        await conn.execute(insert(alerts).values(**opened_row))
        await enqueue_alert(conn, alert=opened_row, event="opened", now_ms=now)
        opened += 1
        OPENED.labels(kind).inc()
        log.warning("alert %s opened for %s: %s", kind, device_id, detail)
    return opened, cleared, still


async def run_evaluator(engine: AsyncEngine, settings: EvaluatorSettings | None = None) -> None:
    """Evaluate every ``interval_s`` until cancelled; a failed tick is retried at the next."""
    settings = settings or EvaluatorSettings()
    while True:
        try:
            await evaluate(engine, limits=settings.thresholds)
        except IntegrityError:
            FAILED.inc()
            log.info("alerts: another instance opened the same alert at once; next tick retries")
        except Exception:
            FAILED.inc()
            log.exception(
                "alerts: evaluation failed (counted in "
                "storefleet_alert_evaluations_failed_total); retrying in %.0f s",
                settings.interval_s,
            )
        await asyncio.sleep(settings.interval_s)
