"""Drift: where what a device reports differs from its effective desired document, and since when.

How it works: the device publishes its retained ``state`` with the version it applied and, from
agents that have it, ``config_hashes`` (sha256 of each section of its normalised document,
``protocols.store_config.key_hashes``). :func:`record_report` keeps the latest report and
:func:`refresh` compares it key by key with the hashes of the stored effective document. A key
that differs gets a ``config_drift`` row with the moment it was first seen differing; the row
goes when the key matches again, so a drift's age is ``now - since`` and survives restarts. A
report without hashes (an older agent) can only be compared by version: every key drifts while
the versions differ. The comparison runs again whenever either side changes: a new report, or a
new effective version (the change itself starts a drift that the device's next report clears).
:func:`fleet_drift` lists the drifting devices; :func:`drift_counts` counts the fleet's drift
(registers drifting, per key, the oldest).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.configuration import document
from control_plane.configuration.tables import config_drift, config_effective, config_reports
from control_plane.devices.tables import devices
from control_plane.tenancy import EVERY_TENANT, TenantScope

CHUNK = 500  # ids per IN (...) list: far below every driver's parameter limit


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _hashes(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else None


def desired_hashes(document_text: str) -> dict[str, str]:
    """The hash of each key of a stored (normalised) effective document."""
    doc = json.loads(document_text)
    return {key: document.value_hash(value) for key, value in doc.items()}


def drifting(
    desired: Mapping[str, str],
    *,
    desired_version: int,
    reported_version: int,
    reported: Mapping[str, str] | None,
) -> set[str]:
    """The keys whose reported state differs from desired."""
    if reported is None:
        return set(desired) if reported_version != desired_version else set()
    return {key for key, digest in desired.items() if reported.get(key) != digest}


async def refresh(conn: AsyncConnection, device_ids: Sequence[str], *, now: int) -> None:
    """Compare the devices' latest reports with their effective documents; keep the drift rows."""
    for chunk in _chunks(list(device_ids)):
        desired = {
            row.device_id: row
            for row in await conn.execute(
                select(
                    config_effective.c.device_id,
                    config_effective.c.version,
                    config_effective.c.document,
                ).where(config_effective.c.device_id.in_(chunk))
            )
        }
        reports = {
            row.device_id: row
            for row in await conn.execute(
                select(config_reports).where(config_reports.c.device_id.in_(chunk))
            )
        }
        held: dict[str, set[str]] = {}
        for row in await conn.execute(
            select(config_drift.c.device_id, config_drift.c.key).where(
                config_drift.c.device_id.in_(chunk)
            )
        ):
            held.setdefault(row.device_id, set()).add(row.key)
        for device_id in chunk:
            want, report = desired.get(device_id), reports.get(device_id)
            keys: set[str] = set()
            if want is not None and report is not None:
                keys = drifting(
                    desired_hashes(want.document),
                    desired_version=want.version,
                    reported_version=report.version,
                    reported=_hashes(report.hashes),
                )
            had = held.get(device_id, set())
            if had - keys:
                await conn.execute(
                    delete(config_drift).where(
                        config_drift.c.device_id == device_id,
                        config_drift.c.key.in_(sorted(had - keys)),
                    )
                )
            if keys - had:
                await conn.execute(
                    insert(config_drift),
                    [{"device_id": device_id, "key": k, "since": now} for k in sorted(keys - had)],
                )


async def record_report(
    engine: AsyncEngine,
    *,
    device_id: str,
    version: int,
    hashes: Mapping[str, str] | None,
    now: int,
) -> bool:
    """Keep the device's latest configuration report and refresh its drift.

    False when the device is not registered (the caller counts and drops the report).
    """
    values: dict[str, Any] = {
        "version": version,
        "hashes": None if hashes is None else json.dumps(dict(hashes), sort_keys=True),
        "received_at": now,
    }
    for _attempt in range(2):  # another instance inserted first: update instead
        try:
            async with engine.begin() as conn:
                changed = await conn.execute(
                    update(config_reports)
                    .where(config_reports.c.device_id == device_id)
                    .values(**values)
                )
                if not changed.rowcount:
                    known = await conn.execute(
                        select(devices.c.id).where(devices.c.id == device_id)
                    )
                    if known.first() is None:
                        return False
                    await conn.execute(insert(config_reports).values(device_id=device_id, **values))
                await refresh(conn, [device_id], now=now)
                return True
        except IntegrityError:
            continue
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetDrift:
    """One device's drift at a glance: how many keys differ and since when (the oldest)."""

    device_id: str
    keys: int
    since: int


async def fleet_drift(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT
) -> dict[str, FleetDrift]:
    """Every drifting device in scope (the fleet table's drift column)."""
    query = (
        select(
            config_drift.c.device_id,
            func.count().label("keys"),
            func.min(config_drift.c.since).label("since"),
        )
        .join(devices, devices.c.id == config_drift.c.device_id)
        .where(scope.where(devices.c.tenant_id))
        .group_by(config_drift.c.device_id)
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return {
            row.device_id: FleetDrift(device_id=row.device_id, keys=row.keys, since=row.since)
            for row in rows
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftCounts:
    """The fleet's drift counted: registers in scope, how many drift, on which keys, since when
    (the oldest drift), so an operator sees at once whether a change is still spreading."""

    registers: int
    drifting: int
    keys: dict[str, int]  # key -> registers on which it drifts
    oldest_since: int | None


async def drift_counts(engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT) -> DriftCounts:
    """The fleet-wide counts of drift in scope (decommissioned registers left out)."""
    live = devices.c.decommissioned_at.is_(None)
    async with engine.connect() as conn:
        registers = await conn.scalar(
            select(func.count()).select_from(devices).where(scope.where(devices.c.tenant_id), live)
        )
        rows = list(
            await conn.execute(
                select(
                    config_drift.c.key,
                    func.count().label("registers"),
                    func.min(config_drift.c.since).label("since"),
                )
                .join(devices, devices.c.id == config_drift.c.device_id)
                .where(scope.where(devices.c.tenant_id), live)
                .group_by(config_drift.c.key)
                .order_by(config_drift.c.key)
            )
        )
        drifting = await conn.scalar(
            select(func.count(func.distinct(config_drift.c.device_id)))
            .join(devices, devices.c.id == config_drift.c.device_id)
            .where(scope.where(devices.c.tenant_id), live)
        )
    return DriftCounts(
        registers=int(registers or 0),
        drifting=int(drifting or 0),
        keys={row.key: int(row.registers) for row in rows},
        oldest_since=min((int(row.since) for row in rows), default=None),
    )
