"""The audit log on both SQL stores: what actions leave behind, search, CSV export, tenant
scoping, and that the database itself refuses to change or delete an entry."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from tests.control_plane.operators.trust_harness import OTHER_TENANT, Trust, trust_on
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = pytest.mark.services


async def _admin(trust: Trust) -> Any:
    await trust.operator("root@platform.example", Role.PLATFORM_ADMIN)
    return await trust.admin_login("root@platform.example")


async def test_creating_an_operator_is_audited_with_who_where_and_after(trust: Trust) -> None:
    root = await _admin(trust)

    created = await root.client.post(
        "/api/operators",
        json={"email": "ops@globex.example", "role": "operator", "tenant_id": OTHER_TENANT},
        headers={"X-CSRF-Token": root.csrf},
    )

    assert created.status_code == 201, created.text
    [entry] = await trust.audit(action="operators:write", actor="root@platform.example")
    assert entry["outcome"] == "ok"
    assert entry["via"] == "session"
    assert entry["tenant_id"] == OTHER_TENANT
    assert entry["target"] == "operator ops@globex.example"
    assert entry["client"] == "127.0.0.1"
    assert created.json()["password"] not in str(entry)
    assert '"role": "operator"' in entry["after"]


async def test_the_search_api_filters_by_actor_action_outcome_and_time(trust: Trust) -> None:
    root = await _admin(trust)
    await trust.client().get("/probe/devices:read")  # an anonymous refusal
    trust.clock.advance(seconds=60)
    since = datetime.fromtimestamp(trust.clock.now() / 1000, tz=UTC).isoformat()
    await root.client.post(
        "/api/operators",
        json={"email": "v@acme.example", "role": "viewer", "tenant_id": "acme"},
        headers={"X-CSRF-Token": root.csrf},
    )

    by_actor = await root.client.get("/api/audit", params={"actor": "anonymous"})
    by_prefix = await root.client.get("/api/audit", params={"action": "auth:"})
    refused = await root.client.get("/api/audit", params={"outcome": "refused"})
    later = await root.client.get(
        "/api/audit", params={"since": since, "action": "operators:write"}
    )

    assert [e["action"] for e in by_actor.json()] == ["devices:read"]
    assert {e["action"] for e in by_prefix.json()} == {"auth:login", "auth:totp_enrol"}
    assert [e["reason"] for e in refused.json()] == ["unauthenticated"]
    assert [e["target"] for e in later.json()] == ["operator v@acme.example"]


async def test_a_tenant_admin_sees_only_its_tenants_entries(trust: Trust) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    await trust.operator("ops@globex.example", Role.OPERATOR, tenant_id=OTHER_TENANT)
    await trust.login("ops@globex.example")
    boss = await trust.admin_login("boss@acme.example")

    entries = (await boss.client.get("/api/audit", params={"limit": 1000})).json()
    foreign = await boss.client.get("/api/audit", params={"actor": "ops@globex.example"})

    assert entries
    assert {e["tenant_id"] for e in entries} == {"acme"}
    assert foreign.json() == []


async def test_the_csv_export_has_a_header_every_entry_and_no_live_formulas(
    trust: Trust,
) -> None:
    root = await _admin(trust)
    await trust.client().post(
        "/api/auth/login", json={"email": "=HYPERLINK(1)@x.example", "password": "guess it!"}
    )

    export = await root.client.get("/api/audit.csv")

    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    api = (await root.client.get("/api/audit", params={"limit": 1000})).json()
    assert [int(row["id"]) for row in rows] == [e["id"] for e in api]
    [guess] = [row for row in rows if row["reason"] == "unknown_email"]
    assert guess["target"] == "'=hyperlink(1)@x.example"
    assert guess["at"].endswith("+00:00")


async def test_audit_reading_is_for_admins_only(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    assert (await login.client.get("/api/audit")).status_code == 403
    assert (await login.client.get("/api/audit.csv")).status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(update(audit_log).values(outcome="ok"), id="update"),
        pytest.param(delete(audit_log), id="delete"),
    ],
)
async def test_the_database_refuses_to_change_or_delete_audit_entries(
    trust: Trust, change: Any
) -> None:
    await trust.client().get("/probe/devices:read")
    before = await trust.audit()

    with pytest.raises(DBAPIError, match="append-only"):
        async with trust.engine.begin() as conn:
            await conn.execute(change)

    assert await trust.audit() == before


@pytest.fixture
async def postgres_trust() -> AsyncIterator[Trust]:
    """The domain on PostgreSQL only (TRUNCATE is PostgreSQL's; SQLite has only DELETE)."""
    url = await create_pg_database()
    try:
        async with trust_on(url) as running:
            yield running
    finally:
        await drop_pg_database(url)


async def test_postgresql_refuses_truncate_of_the_audit_log(postgres_trust: Trust) -> None:
    trust = postgres_trust
    await trust.client().get("/probe/devices:read")

    with pytest.raises(DBAPIError, match="append-only"):
        async with trust.engine.begin() as conn:
            await conn.execute(text("TRUNCATE audit_log"))

    assert len(await trust.audit()) == 1
