"""Roll a layer back to an earlier version of itself: a new change, never history rewritten.

How it works: in one transaction, like any change — find the layer in the operator's scope, lock
the tenant, read the version to restore from the layer's history, and turn the difference with
the layer as it is into keys to set and keys to delete (:func:`preview.restoring`; ``staff`` is
left alone). Those are written with one audit entry, kept as the layer's next version (kind
``rollback``, naming the version restored) and the tenant is recomputed: a device whose document
would become invalid refuses the whole rollback (422, nothing stored, the refusal audited), and
the devices whose document changed get a new version, which the caller publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration.errors import InvalidConfiguration, NothingToRestore
from control_plane.configuration.history import (
    layer_snapshot,
    record_layer_version,
    stored_layer_version,
)
from control_plane.configuration.layers import Layer
from control_plane.configuration.preview import restoring
from control_plane.configuration.resolution import (
    Cause,
    layer_tenant,
    lock_tenant,
    recompute_tenant,
)
from control_plane.configuration.service import (
    EDIT_ACTION,
    audited,
    canonical_value,
    now_ms,
    refused,
)
from control_plane.configuration.tables import config_settings
from control_plane.operators.audit import Actor
from control_plane.tenancy import EVERY_TENANT, TenantScope


@dataclass(frozen=True, slots=True, kw_only=True)
class Restored:
    """A rollback made: the layer's new version, the one restored, the keys it changed, the audit
    entry, and the devices whose document got a new version."""

    layer: Layer
    target: str
    version: int
    restored: int
    keys: list[str]
    audit_id: int
    devices: list[str] = field(default_factory=list)


async def rollback_layer(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    actor: Actor,
    layer: Layer,
    target: str,
    version: int,
    now: int | None = None,
) -> Restored:
    """Make the layer set again what it set at ``version``, as a new, audited version."""
    at = now_ms() if now is None else now
    action = EDIT_ACTION[layer]
    where = f"{layer.value}/{target}"
    try:
        async with engine.begin() as conn:
            tenant_id = await layer_tenant(conn, scope=scope, layer=layer, target=target)
            await lock_tenant(conn, tenant_id)
            wanted = await stored_layer_version(conn, layer=layer, target=target, version=version)
            current = await layer_snapshot(conn, layer, target)
            proposal = restoring(current, wanted)
            if not proposal:
                raise NothingToRestore(layer.value, target, version)
            keys = sorted(proposal.keys)
            texts = {key: canonical_value(key, value) for key, value in proposal.values.items()}
            audit_id = await audited(
                conn,
                actor=actor,
                action=action,
                target=where,
                tenant_id=tenant_id,
                now=at,
                before={"settings": {k: current[k] for k in keys if k in current}},
                after={"restored": version, "settings": dict(proposal.values)},
            )
            for key, text in texts.items():
                row = {"value": text, "set_by": actor.actor, "set_at": at, "audit_id": audit_id}
                if key in current:
                    await conn.execute(
                        update(config_settings).where(*_setting(layer, target, key)).values(**row)
                    )
                else:
                    await conn.execute(
                        insert(config_settings).values(
                            layer=layer.value, target=target, key=key, tenant_id=tenant_id, **row
                        )
                    )
            for key in sorted(proposal.delete):
                await conn.execute(delete(config_settings).where(*_setting(layer, target, key)))
            after: dict[str, Any] = {
                key: value for key, value in current.items() if key not in proposal.delete
            }
            after |= {key: json.loads(text) for key, text in texts.items()}
            new_version = await record_layer_version(
                conn,
                tenant_id=tenant_id,
                layer=layer,
                target=target,
                kind="rollback",
                before=current,
                after=after,
                actor=actor.actor,
                audit_id=audit_id,
                now=at,
                restored=version,
            )
            recomputed = await recompute_tenant(
                conn,
                tenant_id=tenant_id,
                now=at,
                change=keys,
                only=(layer, target),
                cause=Cause(
                    layer=layer,
                    target=target,
                    layer_version=new_version,
                    audit_id=audit_id,
                    actor=actor.actor,
                ),
            )
    except InvalidConfiguration:
        await refused(
            engine, actor=actor, action=action, target=where, reason="invalid_configuration", now=at
        )
        raise
    return Restored(
        layer=layer,
        target=target,
        version=new_version,
        restored=version,
        keys=keys,
        audit_id=audit_id,
        devices=recomputed.changed,
    )


def _setting(layer: Layer, target: str, key: str) -> tuple[Any, ...]:
    return (
        config_settings.c.layer == layer.value,
        config_settings.c.target == target,
        config_settings.c.key == key,
    )
