"""Operators and tokens over the API on both SQL stores: who may create whom, in which tenant."""

from __future__ import annotations

import pytest

from control_plane.operators.principal import Role
from tests.control_plane.operators.trust_harness import OTHER_TENANT, TENANT, Trust

pytestmark = pytest.mark.services


async def test_a_tenant_admins_new_operator_lands_in_its_own_tenant(trust: Trust) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    boss = await trust.admin_login("boss@acme.example")

    created = await boss.client.post(
        "/api/operators",
        json={"email": "New@Acme.example", "role": "operator"},
        headers={"X-CSRF-Token": boss.csrf},
    )

    assert created.status_code == 201, created.text
    assert created.json()["operator"]["tenant_id"] == TENANT
    assert created.json()["operator"]["email"] == "new@acme.example"
    assert len(created.json()["password"]) >= 20
    trust.passwords["new@acme.example"] = created.json()["password"]
    assert (await trust.login("new@acme.example")).operator_id


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        pytest.param(
            {"email": "x@globex.example", "role": "operator", "tenant_id": OTHER_TENANT},
            403,
            "forbidden",
            id="foreign-tenant",
        ),
        pytest.param(
            {"email": "x@acme.example", "role": "platform_admin"},
            403,
            "forbidden",
            id="wider-role",
        ),
        pytest.param(
            {"email": "boss@acme.example", "role": "viewer"},
            409,
            "operator_exists",
            id="same-email",
        ),
        pytest.param(
            {"email": "x@acme.example", "role": "operator", "password": "short"},
            422,
            "invalid_request",
            id="short-password",
        ),
    ],
)
async def test_a_tenant_admin_is_refused_what_its_role_cannot_grant(
    trust: Trust, body: dict[str, str], status: int, reason: str
) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    boss = await trust.admin_login("boss@acme.example")

    response = await boss.client.post(
        "/api/operators", json=body, headers={"X-CSRF-Token": boss.csrf}
    )

    assert response.status_code == status, response.text
    assert response.json()["reason"] == reason


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(
            {"email": "r@x.example", "role": "platform_admin", "tenant_id": TENANT},
            "belongs to no tenant",
            id="platform-admin-with-tenant",
        ),
        pytest.param(
            {"email": "r@x.example", "role": "viewer"}, "belongs to a tenant", id="no-tenant"
        ),
        pytest.param(
            {"email": "r@x.example", "role": "viewer", "tenant_id": "nope"},
            "does not exist",
            id="unknown-tenant",
        ),
    ],
)
async def test_role_and_tenant_must_fit(trust: Trust, body: dict[str, str], detail: str) -> None:
    await trust.operator("root@platform.example", Role.PLATFORM_ADMIN)
    root = await trust.admin_login("root@platform.example")

    response = await root.client.post(
        "/api/operators", json=body, headers={"X-CSRF-Token": root.csrf}
    )

    assert response.status_code in {404, 422}
    assert detail in response.json()["detail"]


async def test_operator_lists_are_scoped_to_the_tenant(trust: Trust) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    await trust.operator("ops@acme.example", Role.OPERATOR)
    await trust.operator("ops@globex.example", Role.OPERATOR, tenant_id=OTHER_TENANT)
    await trust.operator("root@platform.example", Role.PLATFORM_ADMIN)
    boss = await trust.admin_login("boss@acme.example")
    root = await trust.admin_login("root@platform.example")

    tenant_view = (await boss.client.get("/api/operators")).json()
    platform_view = (await root.client.get("/api/operators")).json()

    assert [o["email"] for o in tenant_view] == ["boss@acme.example", "ops@acme.example"]
    assert len(platform_view) == 4
    assert all("password_hash" not in o and "totp_secret" not in o for o in platform_view)


async def test_a_token_request_with_an_unknown_scope_is_refused(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    response = await login.client.post(
        "/api/tokens",
        json={"name": "ci", "scopes": ["everything"]},
        headers={"X-CSRF-Token": login.csrf},
    )

    assert response.status_code == 422


async def test_a_token_cannot_outlive_the_configured_maximum(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    response = await login.client.post(
        "/api/tokens",
        json={"name": "ci", "scopes": ["read"], "days": 366},
        headers={"X-CSRF-Token": login.csrf},
    )

    assert response.status_code == 422
    assert response.json()["reason"] == "invalid_operator"


async def test_a_token_cannot_mint_tokens(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    _, secret = await trust.api_token("ops@acme.example", ["read", "devices"])

    response = await trust.client().post(
        "/api/tokens",
        json={"name": "again", "scopes": ["read"]},
        headers={"Authorization": f"Bearer {secret}"},
    )

    assert response.status_code == 403
