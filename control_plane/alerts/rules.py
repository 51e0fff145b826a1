"""Which alert conditions hold now, read from what the control plane already stores.

Each rule reads rows, never the network: presence and telemetry (``devices``), the chain flag the
ingest sets, the peripherals the device reported (``device_state``), the certificates issued to
it, the agent's events (``device_events``), its journal's timestamps and the sampled history. A
condition is ``(device_id, kind) → detail``; the evaluator opens, refreshes and clears alerts from
the whole set, so a rule only has to say what is true now.

The rules and their thresholds (:class:`Thresholds`, settings of the evaluator):

* ``silent`` — nothing heard from the device (status, telemetry, a batch) for ``silent_after``
  (a device never heard yet, registered ahead of its installation, is not silent);
* ``backlog_growing`` — the appliance's backlog rose in each of the last ``growing_samples``
  history samples and is at least ``backlog_min``;
* ``replication_lag`` — the appliance's reported lag, or the cloud's lag behind its newest
  record at ingest, above ``lag_limit``;
* ``chain_broken`` — the stored chain was broken or forged (a record that does not continue it,
  a hash that does not match, a signed head that proves nothing);
* ``record_refused`` — a record the cloud cannot store (the ingest's reason says so);
* ``printer`` — a printer peripheral reports an error (out of paper, cover open, …);
* ``crash_loop`` — the agent's last word on the register is ``app.crash_loop`` (not followed by
  ``app.recovered``);
* ``certificate_expiring`` — the device's newest valid certificate ends within ``cert_days``;
* ``clock_skew`` — its newest journal record is stamped later than the cloud received it by
  more than ``skew_limit`` (the device's clock runs ahead: no delay explains it), or earlier by
  more than ``skew_limit`` although the device reports no backlog and a lag under 10 s (the
  delay is not replication's, so it is the clock's);
* ``os_update_reverted`` — the newest OS update the appliance finished (``os.update``
  ``reverted``, ``failed`` or ``succeeded``) was reverted: its one boot try failed and the boot
  loader went back to the old slot (issue 15: a revert is a failure); cleared by a later update
  that succeeds;
* ``loyalty_overdraft`` — a redemption at the device took a customer's points or store credit
  below zero (two stores redeemed the same balance offline; ``control_plane.loyalty.overdraft``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.alerts.tables import device_events, device_history
from control_plane.devices.state import problems
from control_plane.devices.tables import device_state, devices
from control_plane.ingest.tables import journal
from control_plane.loyalty import overdraft
from control_plane.provisioning.tables import issued_certificates
from protocols.vocabulary import EventKind

KINDS = (
    "silent",
    "backlog_growing",
    "replication_lag",
    "chain_broken",
    "record_refused",
    "printer",
    "crash_loop",
    "certificate_expiring",
    "clock_skew",
    "os_update_reverted",
    overdraft.KIND,
)
#: ``os.update`` states that end an OS update (protocols.release_bundle.FINAL_STATES' words).
_OS_FINAL = ("succeeded", "failed", "reverted", "timed_out")
DAY_MS = 86_400_000
#: Words of the ingest's reason for a record it cannot store (``control_plane.ingest.service``).
_REFUSED_WORDS = ("the cloud cannot store it", "the cloud's database refused it")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a condition counts; each is a setting of the evaluator."""

    silent_after_ms: int = 10 * 60_000
    lag_limit_ms: int = 5 * 60_000
    backlog_min: int = 1
    growing_samples: int = 3
    cert_days: int = 30
    skew_limit_ms: int = 2 * 60_000


@dataclass(frozen=True, slots=True)
class Device:
    """What the rules need of a device row."""

    id: str
    tenant_id: str
    store_id: str


Conditions = dict[tuple[str, str], str]


async def live_devices(conn: AsyncConnection) -> dict[str, Any]:
    """Every device not decommissioned, with its presence and replication columns."""
    rows = (
        await conn.execute(select(devices).where(devices.c.decommissioned_at.is_(None)))
    ).mappings()
    return {row["id"]: row for row in rows}


async def conditions(
    conn: AsyncConnection, rows: dict[str, Any], *, now_ms: int, limits: Thresholds
) -> Conditions:
    """Every condition that holds now, by (device, kind), with what an operator reads."""
    found: Conditions = {}
    for device_id, row in rows.items():
        # a register not yet installed (never heard) is not silent: it has not spoken yet
        heard = max((row["last_seen_at"] or 0), (row["last_ingest_at"] or 0))
        if heard and now_ms - heard > limits.silent_after_ms:
            found[(device_id, "silent")] = f"nothing heard for {_span(now_ms - heard)}"
        lag, ingest_lag = row["lag_ms"], row["ingest_lag_ms"]
        if lag is not None and lag > limits.lag_limit_ms:
            found[(device_id, "replication_lag")] = f"the register reports {_span(lag)} of lag"
        elif ingest_lag is not None and ingest_lag > limits.lag_limit_ms:
            found[(device_id, "replication_lag")] = (
                f"records reach the cloud {_span(ingest_lag)} after they were made"
            )
        if not row["chain_ok"]:
            detail = str(row["chain_detail"] or "the stored chain is broken")
            kind = "record_refused" if any(w in detail for w in _REFUSED_WORDS) else "chain_broken"
            found[(device_id, kind)] = detail
    await _backlog(conn, rows, found, limits)
    await _printers(conn, rows, found)
    await _crash_loops(conn, rows, found)
    await _os_updates(conn, rows, found)
    await _certificates(conn, rows, found, now_ms=now_ms, limits=limits)
    await _clock_skew(conn, rows, found, limits=limits)
    for device_id, detail in (await overdraft.conditions(conn, rows)).items():
        found[(device_id, overdraft.KIND)] = detail
    return found


def _span(ms: int) -> str:
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


async def _backlog(
    conn: AsyncConnection, rows: dict[str, Any], found: Conditions, limits: Thresholds
) -> None:
    n = limits.growing_samples + 1
    ranked = select(
        device_history.c.device_id,
        device_history.c.backlog,
        func.row_number()
        .over(partition_by=device_history.c.device_id, order_by=device_history.c.at.desc())
        .label("rank"),
    ).subquery()
    query = select(ranked.c.device_id, ranked.c.backlog, ranked.c.rank).where(ranked.c.rank <= n)
    series: dict[str, list[int]] = {}
    for device_id, backlog, _rank in (
        await conn.execute(query.order_by(ranked.c.rank.desc()))
    ).all():
        series.setdefault(device_id, []).append(int(backlog))
    for device_id, values in series.items():
        if device_id not in rows or len(values) < n:
            continue
        rising = all(b > a for a, b in pairwise(values))
        if rising and values[-1] >= limits.backlog_min:
            found[(device_id, "backlog_growing")] = (
                f"backlog rose {values[0]} → {values[-1]} records over the last "
                f"{limits.growing_samples} samples"
            )


async def _printers(conn: AsyncConnection, rows: dict[str, Any], found: Conditions) -> None:
    query = select(device_state.c.device_id, device_state.c.peripherals)
    for device_id, text in (await conn.execute(query)).all():
        if device_id not in rows:
            continue
        try:
            peripherals = json.loads(text)
        except ValueError:
            continue
        if not isinstance(peripherals, dict):
            continue
        printers = {
            name: health
            for name, health in peripherals.items()
            if isinstance(health, dict)
            and (health.get("kind") == "printer" or "printer" in str(name))
            and health.get("error")
        }
        lines = problems(printers)
        if lines:
            found[(device_id, "printer")] = "; ".join(lines)


async def _crash_loops(conn: AsyncConnection, rows: dict[str, Any], found: Conditions) -> None:
    kinds = (EventKind.APP_CRASH_LOOP.value, EventKind.APP_RECOVERED.value)
    newest = (
        select(device_events.c.device_id, func.max(device_events.c.id).label("id"))
        .where(device_events.c.kind.in_(kinds))
        .group_by(device_events.c.device_id)
        .subquery()
    )
    query = select(device_events.c.device_id, device_events.c.kind, device_events.c.body).join(
        newest, and_(newest.c.id == device_events.c.id)
    )
    for device_id, kind, body in (await conn.execute(query)).all():
        if device_id in rows and kind == EventKind.APP_CRASH_LOOP.value:
            found[(device_id, "crash_loop")] = _crash_detail(body)


async def _os_updates(conn: AsyncConnection, rows: dict[str, Any], found: Conditions) -> None:
    """The newest finished OS update of each device, when it was reverted."""
    query = (
        select(device_events.c.device_id, device_events.c.body)
        .where(device_events.c.kind == EventKind.OS_UPDATE.value)
        .order_by(device_events.c.device_id, device_events.c.id)
    )
    newest: dict[str, dict[str, Any]] = {}
    for device_id, text in (await conn.execute(query)).all():
        body = _json_object(text)
        if device_id in rows and body.get("state") in _OS_FINAL:
            newest[device_id] = body  # ordered by id: the last one wins
    for device_id, body in newest.items():
        if body.get("state") == "reverted":
            version = body.get("version") or "?"
            found[(device_id, "os_update_reverted")] = (
                f"OS update {version} reverted: {body.get('detail') or 'its boot try failed'}"
            )


def _json_object(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _crash_detail(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    starts = body.get("failures") if isinstance(body, dict) else None
    return f"the register failed {starts} starts in a row" if starts else "the register crash-loops"


async def _certificates(
    conn: AsyncConnection,
    rows: dict[str, Any],
    found: Conditions,
    *,
    now_ms: int,
    limits: Thresholds,
) -> None:
    query = (
        select(issued_certificates.c.device_id, func.max(issued_certificates.c.not_after))
        .where(
            issued_certificates.c.device_id.is_not(None),
            issued_certificates.c.revoked_at.is_(None),
        )
        .group_by(issued_certificates.c.device_id)
    )
    for device_id, not_after in (await conn.execute(query)).all():
        if device_id not in rows or not_after is None:
            continue
        left = int(not_after) - now_ms
        if left < limits.cert_days * DAY_MS:
            found[(device_id, "certificate_expiring")] = (
                "its certificate expired"
                if left <= 0
                else f"its certificate expires in {_span(left)}"
            )


async def _clock_skew(
    conn: AsyncConnection, rows: dict[str, Any], found: Conditions, *, limits: Thresholds
) -> None:
    for device_id, row in rows.items():
        if not row["hwm"]:
            continue
        newest = (
            await conn.execute(
                select(journal.c.ts, journal.c.received_at).where(
                    journal.c.device_id == device_id, journal.c.seq == row["hwm"]
                )
            )
        ).first()
        if newest is None:
            continue
        ahead = int(newest.ts) - int(newest.received_at)
        prompt = row["backlog"] == 0 and row["lag_ms"] is not None and row["lag_ms"] < 10_000
        if ahead > limits.skew_limit_ms:
            found[(device_id, "clock_skew")] = f"its clock runs {_span(ahead)} ahead"
        elif prompt and -ahead > limits.skew_limit_ms:
            found[(device_id, "clock_skew")] = f"its clock runs {_span(-ahead)} behind"
