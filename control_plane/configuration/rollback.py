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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration.errors import NothingToRestore
from control_plane.configuration.history import layer_snapshot, stored_layer_version
from control_plane.configuration.layers import Layer
from control_plane.configuration.preview import restoring
from control_plane.configuration.service import (
    EDIT_ACTION,
    LayerEdit,
    apply_edit,
    audited,
    canonical_value,
    layer_change,
    now_ms,
)
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
    may_change: Callable[[Iterable[str]], None] = lambda keys: None,
) -> Restored:
    """Make the layer set again what it set at ``version``, as a new, audited version.

    ``may_change`` sees the keys the rollback would change before anything is stored, and
    refuses by raising (an operator may not reopen support's SSH by restoring a version)."""
    at = now_ms() if now is None else now
    where = f"{layer.value}/{target}"
    change = layer_change(
        engine, scope=scope, actor=actor, layer=layer, target=target, audited_as=where, now=at
    )
    async with change as (conn, tenant_id):
        wanted = await stored_layer_version(conn, layer=layer, target=target, version=version)
        current = await layer_snapshot(conn, layer, target)
        proposal = restoring(current, wanted)
        if not proposal:
            raise NothingToRestore(layer.value, target, version)
        keys = sorted(proposal.keys)
        may_change(keys)
        edit = LayerEdit(
            kind="rollback",
            sets={key: canonical_value(key, value) for key, value in proposal.values.items()},
            deletes=frozenset(proposal.delete),
            restored=version,
        )
        audit_id = await audited(
            conn,
            actor=actor,
            action=EDIT_ACTION[layer],
            target=where,
            tenant_id=tenant_id,
            now=at,
            before={"settings": {k: current[k] for k in keys if k in current}},
            after={"restored": version, "settings": dict(proposal.values)},
        )
        edited = await apply_edit(
            conn,
            tenant_id=tenant_id,
            layer=layer,
            target=target,
            edit=edit,
            current=current,
            actor=actor,
            audit_id=audit_id,
            now=at,
        )
    return Restored(
        layer=layer,
        target=target,
        version=edited.version,
        restored=version,
        keys=keys,
        audit_id=audit_id,
        devices=edited.devices,
    )
