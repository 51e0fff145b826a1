"""Every change an operator makes writes exactly one audit entry: who, what, target, tenant,
outcome — route by route, from the access table's own rows and world.

Each changing route of the table (API routes and console forms with an unsafe method that answer
success) is sent once by the platform admin's session, as the access table sends it, over HTTP to
the served app on SQLite and PostgreSQL; the entries written by that one request are read back
from ``audit_log``. Refusals of a change (another tenant's device, an unusable body) are checked
too: the first is kept as ``refused`` with its reason, the second is not a change at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from control_plane.configuration.staged import DRIVER_VIA
from control_plane.operators.change_audit import _masked
from control_plane.operators.policy import AUTHENTICATED
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from tests.control_plane.test_access_table import (  # the table's world, shared by module
    FOREIGN,
    OWN,
    TABLE,
    UNSAFE,
    Row,
    World,
    _send,
    email_of,
    world,
    world_url,
)

__all__ = ["world", "world_url"]  # fixtures, imported to be used here
pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

UNSAFE_OK = [
    row
    for row in TABLE
    if row.kind in ("api", "page") and row.method in UNSAFE and row.ok < 400 and not row.pending
]
#: A configuration preview is a POST for its body and changes nothing: it is not audited. The
#: console's customer search is a POST too (the phone or e-mail searched for stays out of URLs);
#: a tenant's operator's search writes its own entry, a platform admin's finds nothing there.
PREVIEWS = [
    row for row in UNSAFE_OK if row.key.endswith("/preview") or row.key == "POST /customers"
]
CHANGES = [row for row in UNSAFE_OK if row not in PREVIEWS]


async def last_id(world: World) -> int:
    async with world.engine.connect() as conn:
        return int(await conn.scalar(select(func.max(audit_log.c.id))) or 0)


async def entries_after(world: World, after: int) -> list[dict[str, Any]]:
    """The entries written since ``after`` by requests: the configuration changes through waves
    that the table's rows start go on in the background, and their driver audits its own steps
    (``via`` config-change) whenever it ticks, whichever request is being checked."""
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            select(audit_log)
            .where(audit_log.c.id > after, audit_log.c.via != DRIVER_VIA)
            .order_by(audit_log.c.id)
        )
        return [dict(row) for row in rows.mappings()]


def test_the_table_has_changes_to_audit() -> None:
    keys = {row.key for row in CHANGES}
    assert "POST /api/devices/{device_id}/decommission" in keys
    assert "POST /api/devices/{device_id}/commands" in keys
    assert "POST /api/catalog/items" in keys
    assert "POST /api/config/stores/{store_id}/settings/preview" in {row.key for row in PREVIEWS}


@pytest.mark.parametrize("row", [pytest.param(row, id=row.key) for row in CHANGES])
async def test_each_change_writes_one_entry(world: World, row: Row) -> None:
    call = await row.build(world, world.tenants[OWN])
    headers = await world.session(Role.PLATFORM_ADMIN)
    before = await last_id(world)

    answer = await _send(world, row, call, headers)
    written = await entries_after(world, before)
    target = f"{row.method} {call.path.split('?')[0]}"
    generic = [e for e in written if e["target"] == target]  # the change audit's entry
    own = [e for e in written if e["target"] != target]  # the route's own, in its transaction

    assert answer.status_code == row.ok, answer.text[:300]
    # exactly one entry of the change audit, unless the route wrote its own (then none)
    assert len(generic) == (0 if own else 1), [(e["action"], e["target"]) for e in written]
    for entry in written:
        assert entry["outcome"] == "ok"
        assert entry["actor"] == email_of(Role.PLATFORM_ADMIN)
        assert entry["via"] == "session"
        if row.guard != AUTHENTICATED:  # the policy action, or the route's own finer name of it
            noun = str(row.guard).split(":")[0]
            assert entry["action"] == row.guard or entry["action"].startswith(noun + ":")
    for entry in generic:
        assert entry["action"] == row.guard
        assert entry["client"] == "127.0.0.1"
        if row.foreign != "n/a":  # the route names a tenant's object: the entry says whose
            assert entry["tenant_id"] == OWN


@pytest.mark.parametrize("row", [pytest.param(row, id=row.key) for row in PREVIEWS])
async def test_a_preview_that_answers_writes_no_entry(world: World, row: Row) -> None:
    call = await row.build(world, world.tenants[OWN])
    headers = await world.session(Role.PLATFORM_ADMIN)
    before = await last_id(world)

    answer = await _send(world, row, call, headers)

    assert answer.status_code == row.ok, answer.text[:300]
    assert await entries_after(world, before) == []


async def test_a_tenant_admins_change_is_its_tenants_and_keeps_what_was_asked(
    world: World,
) -> None:
    device = world.tenants[OWN].device
    body = {"name": "printer.test_page", "args": {"copies": 1}}
    before = await last_id(world)

    answer = await _send(
        world,
        _row("POST /api/devices/{device_id}/commands"),
        _call(f"/api/devices/{device}/commands", body),
        await world.session(Role.TENANT_ADMIN),
    )
    [entry] = await entries_after(world, before)

    assert answer.status_code == 202, answer.text
    assert (entry["actor"], entry["tenant_id"], entry["action"]) == (
        email_of(Role.TENANT_ADMIN),
        OWN,
        "commands:send",
    )
    assert entry["target"] == f"POST /api/devices/{device}/commands"
    assert '"copies": 1' in entry["after"]


async def test_a_change_on_another_tenants_device_is_kept_as_refused(world: World) -> None:
    foreign = world.tenants[FOREIGN].device
    before = await last_id(world)

    answer = await _send(
        world,
        _row("POST /api/devices/{device_id}/decommission"),
        _call(f"/api/devices/{foreign}/decommission", {}),
        await world.session(Role.OPERATOR),
    )
    written = await entries_after(world, before)

    assert answer.status_code == 404
    assert [(e["outcome"], e["reason"], e["action"], e["tenant_id"]) for e in written] == [
        ("refused", "device_not_found", "devices:write", OWN)  # the operator's own tenant
    ]


async def test_an_unusable_request_is_no_change(world: World) -> None:
    before = await last_id(world)

    answer = await _send(
        world,
        _row("POST /api/devices/{device_id}/commands"),
        _call(f"/api/devices/{world.tenants[OWN].device}/commands", {"name": 7}),
        await world.session(Role.PLATFORM_ADMIN),
    )
    written = await entries_after(world, before)

    assert answer.status_code == 422
    assert [e["outcome"] for e in written if e["outcome"] == "ok"] == []


def test_secrets_are_masked_in_what_is_kept() -> None:
    asked = {"email": "a@b", "password": "hunter2", "nested": [{"api_token": "sft_x"}]}

    assert _masked(asked) == {"email": "a@b", "password": "***", "nested": [{"api_token": "***"}]}


def _row(key: str) -> Row:
    return next(row for row in TABLE if row.key == key)


def _call(path: str, body: Any) -> Any:
    from tests.control_plane.test_access_table import Call

    return Call(path, body)
