"""Every change an operator makes is in the audit log: who, what, target, tenant, outcome.

How it works: the policy's guard (``policy.require``) is a dependency that yields the principal
and runs again when the route has finished (FastAPI's ``scope="function"``: before the answer
is sent, so a client that got its answer finds the entry). For an unsafe method (POST, PUT,
PATCH, DELETE) it then calls :func:`record_change`: outcome ``ok`` when the route returned, or
``refused`` with the domain error's reason when it refused (another tenant's device is "not
found" — an attempt worth keeping). One entry per request, in the existing append-only
``audit_log`` — the same one login, operators and tokens write.

What is kept: the actor (operator, session or token), the policy action (``devices:write``),
the target (``POST /api/devices/acme-01-r1/decommission``), the client address, the tenant the
change touched, and as ``after`` what was asked (the request's JSON or form fields, secrets
masked, large bodies summarised by size). The tenant is the principal's own for tenant roles; a
platform admin's is read from the object the path names (a device, store, enrolment or
rollout) or a ``tenant_id`` in the body, so a tenant admin's search finds what the platform
did in their tenant too.

Routes that write their own, richer entry in the change's transaction (operators, API tokens,
rollouts, releases, configuration: anything that calls ``audit.record`` while serving the
request, seen through ``audit.watch``) are left to themselves, so each change has exactly one
entry. The entry is written after the change committed, in its own transaction: a change whose entry
could not be written answers 500 (the change stays; the log line says so).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.operators import audit
from control_plane.operators.gatekeeper import client_address, get_gatekeeper
from control_plane.operators.principal import Principal

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Request fields never kept in the log, by name (any part of it), whatever the route.
SECRET_FIELDS = ("password", "secret", "token", "totp", "csrf", "code", "key")
MAX_KEPT_BODY = 2048  # characters of JSON kept as ``after``; a larger body is kept by its size


def is_change(method: str) -> bool:
    """Whether a request of ``method`` changes something (and so gets an entry)."""
    return method in UNSAFE_METHODS


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            str(key): "***" if any(s in str(key).lower() for s in SECRET_FIELDS) else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


async def asked(request: Request) -> dict[str, Any] | None:
    """What the request asked for, secrets masked; None when it carried nothing readable."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            raw = await request.body()
            if not raw:
                return None
            if len(raw) > MAX_KEPT_BODY:
                return {"body_bytes": len(raw)}
            document = json.loads(raw)
            kept: dict[str, Any] = _masked(
                document if isinstance(document, dict) else {"body": document}
            )
            return kept
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            fields: dict[str, Any] = _masked({k: str(v)[:200] for k, v in form.items()})
            return fields
    except (RuntimeError, ValueError, UnicodeDecodeError):  # consumed stream, not JSON
        return None
    return None


async def _tenant_of(
    engine: AsyncEngine, path: Mapping[str, Any], body: Mapping[str, Any] | None
) -> str | None:
    """The tenant of the object the path (else the body) names, else the body's
    ``tenant_id``; None when the change belongs to no tenant (a new tenant, the CRL)."""
    from control_plane.devices.tables import devices, stores
    from control_plane.notifications.tables import notification_channels
    from control_plane.provisioning.tables import enrolments
    from control_plane.rollouts.tables import rollouts

    tables = {
        "device_id": devices,
        "store_id": stores,
        "enrolment_id": enrolments,
        "rollout_id": rollouts,
        "channel_id": notification_channels,
    }
    named = [(p, path[p]) for p in tables if p in path]
    named += [(p, (body or {})[p]) for p in tables if isinstance((body or {}).get(p), str)]
    async with engine.connect() as conn:
        for parameter, value in named:
            table = tables[parameter]
            tenant = await conn.scalar(select(table.c.tenant_id).where(table.c.id == str(value)))
            if tenant is not None:
                return str(tenant)
    given = (body or {}).get("tenant_id")
    return given if isinstance(given, str) else None


async def tenant_before_delete(request: Request, principal: Principal) -> str | None:
    """The tenant of the object a DELETE names, read before the route removes it (afterwards
    there is nothing left to ask); None for other methods, whose body may still be unread."""
    if request.method != "DELETE" or principal.tenant_id is not None:
        return None
    return await _tenant_of(get_gatekeeper(request).engine, request.path_params, None)


async def record_change(
    request: Request,
    principal: Principal,
    *,
    action: str,
    refused: str | None = None,
    tenant_before: str | None = None,
) -> None:
    """Append the entry of one change request (``refused``: the refusal's reason;
    ``tenant_before``: the tenant of what the path named, read before a delete removed it)."""
    gatekeeper = get_gatekeeper(request)
    body = await asked(request)
    tenant = principal.tenant_id or tenant_before
    if tenant is None:
        tenant = await _tenant_of(gatekeeper.engine, request.path_params, body)
    try:
        await audit.record_alone(
            gatekeeper.engine,
            at=gatekeeper.now(),
            actor=audit.Actor.of(principal),
            action=action,
            outcome="ok" if refused is None else "refused",
            target=f"{request.method} {request.url.path}",
            reason=refused or "",
            client=client_address(request),
            tenant_id=tenant,
            after=body,
        )
    except Exception:
        log.exception(
            "%s %s by %s was done but its audit entry could not be written: check the store",
            request.method,
            request.url.path,
            principal.email,
        )
        raise
