"""Read a device's configuration as an operator sees it: each key's desired value, where it came
from, whether the device's reported hash matches, and since when it drifts.

A device without a stored effective document (its store lacks a required key) is shown resolved
from its layers as they are, with what keeps it incomplete, so the operator knows what to set.
Staff PIN hashes are never shown (``document.redacted``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import document
from control_plane.configuration.drift import desired_hashes
from control_plane.configuration.layers import PLATFORM_DEFAULT, LayerIndex, Provenance
from control_plane.configuration.resolution import placements, tenant_settings
from control_plane.configuration.tables import config_drift, config_effective, config_reports
from control_plane.devices import service as registry
from control_plane.tenancy import EVERY_TENANT, TenantScope

Match = Literal["match", "mismatch", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyView:
    """One key of a device's document."""

    key: str
    value: Any
    provenance: Provenance
    desired_hash: str | None
    reported_hash: str | None
    match: Match
    drift_since: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceConfiguration:
    """A device's effective document, key by key, with what it reported."""

    device_id: str
    tenant_id: str
    store_id: str
    version: int | None  # None: no complete document yet, nothing published
    published_version: int
    reported_version: int | None
    reported_at: int | None
    incomplete: str | None  # why there is no complete document
    keys: list[KeyView] = field(default_factory=list)


async def device_configuration(
    engine: AsyncEngine, *, scope: TenantScope = EVERY_TENANT, device_id: str
) -> DeviceConfiguration:
    """The device's configuration view; :class:`DeviceNotFound` when not in ``scope``."""
    device = await registry.get_device(engine, scope=scope, device_id=device_id)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                select(config_effective).where(config_effective.c.device_id == device_id)
            )
        ).first()
        report = (
            await conn.execute(
                select(config_reports).where(config_reports.c.device_id == device_id)
            )
        ).first()
        since = {
            row.key: row.since
            for row in await conn.execute(
                select(config_drift).where(config_drift.c.device_id == device_id)
            )
        }
        incomplete: str | None = None
        if stored is None:
            place = [
                p for p in await placements(conn, device.tenant_id) if p.device_id == device_id
            ]
            resolved = (
                LayerIndex(await tenant_settings(conn, device.tenant_id)).resolve(
                    place[0], document.platform_defaults()
                )
                if place
                else None
            )
            doc = resolved.document if resolved else {}
            provenance = resolved.provenance if resolved else {}
            outcome = document.check(doc)
            if isinstance(outcome, document.Violation):
                incomplete = f"{outcome.path}: {outcome.reason}"
            hashes: dict[str, str] = {}
        else:
            doc = json.loads(stored.document)
            provenance = {
                key: Provenance.from_json(raw) for key, raw in json.loads(stored.provenance).items()
            }
            hashes = desired_hashes(stored.document)
    reported: dict[str, str] | None = None
    if report is not None and report.hashes is not None:
        reported = {str(k): str(v) for k, v in json.loads(report.hashes).items()}
    same_version = stored is not None and report is not None and report.version == stored.version
    keys = []
    for key in document.sections():
        desired = hashes.get(key)
        if desired is None or report is None:
            match: Match = "unknown"
        elif reported is None:
            match = "match" if same_version else "unknown"
        else:
            match = "match" if reported.get(key) == desired else "mismatch"
        keys.append(
            KeyView(
                key=key,
                value=document.redacted(key, doc.get(key)),
                provenance=provenance.get(key, PLATFORM_DEFAULT),
                desired_hash=desired,
                reported_hash=None if reported is None else reported.get(key),
                match=match,
                drift_since=since.get(key),
            )
        )
    return DeviceConfiguration(
        device_id=device_id,
        tenant_id=device.tenant_id,
        store_id=device.store_id,
        version=None if stored is None else stored.version,
        published_version=0 if stored is None else stored.published_version,
        reported_version=None if report is None else report.version,
        reported_at=None if report is None else report.received_at,
        incomplete=incomplete,
        keys=keys,
    )
