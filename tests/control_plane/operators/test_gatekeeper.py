"""The one dependency on both SQL stores: sessions with CSRF, API tokens with scopes, expiry,
revocation and last use, the per-client rate limit, and the audit entry of every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from control_plane.operators.principal import Role
from control_plane.operators.tables import api_tokens, operators
from tests.control_plane.operators.trust_harness import Trust, trust_on

pytestmark = pytest.mark.services


async def _token(trust: Trust, email: str, scopes: list[str], **extra: Any) -> dict[str, Any]:
    login = await trust.login(email)
    response = await login.client.post(
        "/api/tokens",
        json={"name": "ci", "scopes": scopes, **extra},
        headers={"X-CSRF-Token": login.csrf},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_no_credentials_answer_401_and_are_audited(trust: Trust) -> None:
    response = await trust.client().get("/probe/devices:read")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="storefleet"'
    assert response.json()["reason"] == "unauthenticated"
    [entry] = await trust.audit(outcome="refused")
    assert (entry["actor"], entry["action"], entry["reason"]) == (
        "anonymous",
        "devices:read",
        "unauthenticated",
    )
    assert entry["target"] == "GET /probe/devices:read"
    assert entry["client"] == "127.0.0.1"


async def test_a_role_outside_the_table_is_refused_403_and_audited(trust: Trust) -> None:
    await trust.operator("viewer@acme.example", Role.VIEWER)
    login = await trust.login("viewer@acme.example")

    read = await login.client.get("/probe/devices:read")
    write = await login.client.post("/probe/devices:write", headers={"X-CSRF-Token": login.csrf})

    assert read.status_code == 200
    assert read.json()["tenant_id"] == "acme"
    assert write.status_code == 403
    assert write.json()["reason"] == "forbidden"
    [entry] = await trust.audit(outcome="refused")
    assert (entry["actor"], entry["action"], entry["tenant_id"]) == (
        "viewer@acme.example",
        "devices:write",
        "acme",
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"X-CSRF-Token": "forged"}, id="wrong-token"),
    ],
)
async def test_a_session_post_without_its_csrf_token_is_refused(
    trust: Trust, headers: dict[str, str]
) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    response = await login.client.post("/probe/catalog:write", headers=headers)

    assert response.status_code == 403
    assert response.json()["reason"] == "csrf_refused"
    [entry] = await trust.audit(outcome="refused")
    assert entry["reason"] == "csrf_refused"


async def test_the_csrf_token_is_accepted_as_header_or_form_field(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    header = await login.client.post("/probe/catalog:write", headers={"X-CSRF-Token": login.csrf})
    form = await login.client.post("/probe/catalog:write", data={"csrf_token": login.csrf})
    wrong_form = await login.client.post("/probe/catalog:write", data={"csrf_token": "x"})

    assert header.status_code == 200
    assert form.status_code == 200
    assert wrong_form.status_code == 403


async def test_a_token_acts_within_its_scopes_and_needs_no_csrf(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    created = await _token(trust, "ops@acme.example", ["devices"])
    api = trust.client()

    allowed = await api.post("/probe/commands:send", headers=_bearer(created["secret"]))
    outside = await api.post("/probe/catalog:write", headers=_bearer(created["secret"]))

    assert created["secret"].startswith("sft_")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["via"] == "token"
    assert outside.status_code == 403
    assert "scopes (devices) do not allow it" in outside.json()["detail"]


async def test_a_token_is_stored_only_as_its_hash(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    created = await _token(trust, "ops@acme.example", ["read"])
    async with trust.engine.connect() as conn:
        stored = (await conn.execute(select(api_tokens))).mappings().one()

    assert created["secret"] not in str(dict(stored))
    assert len(stored["token_hash"]) == 64


async def test_a_token_stops_at_its_expiry(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    created = await _token(trust, "ops@acme.example", ["read"], days=1)
    api = trust.client()
    trust.clock.advance(seconds=86_400 - 1)
    assert (await api.get("/probe/devices:read", headers=_bearer(created["secret"]))).is_success

    trust.clock.advance(seconds=1)
    expired = await api.get("/probe/devices:read", headers=_bearer(created["secret"]))

    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


async def test_a_revoked_token_is_refused_at_once(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")
    created = await _token(trust, "ops@acme.example", ["read"])
    api = trust.client()
    assert (await api.get("/probe/devices:read", headers=_bearer(created["secret"]))).is_success

    revoked = await login.client.post(
        f"/api/tokens/{created['token']['id']}/revoke", headers={"X-CSRF-Token": login.csrf}
    )
    after = await api.get("/probe/devices:read", headers=_bearer(created["secret"]))

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]
    assert [e["action"] for e in await trust.audit(outcome="ok", action="tokens:write")] == [
        "tokens:write",
        "tokens:write",
    ]


async def test_another_operator_cannot_revoke_a_token_but_their_admin_can(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    await trust.operator("other@acme.example", Role.OPERATOR)
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    created = await _token(trust, "ops@acme.example", ["read"])
    other = await trust.login("other@acme.example")
    boss = await trust.admin_login("boss@acme.example")
    path = f"/api/tokens/{created['token']['id']}/revoke"

    refused = await other.client.post(path, headers={"X-CSRF-Token": other.csrf})
    done = await boss.client.post(path, headers={"X-CSRF-Token": boss.csrf})

    assert refused.status_code == 404
    assert done.status_code == 200


async def test_token_last_use_is_recorded_and_listed(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")
    created = await _token(trust, "ops@acme.example", ["read"])
    before = (await login.client.get("/api/tokens")).json()
    trust.clock.advance(seconds=60)

    await trust.client().get("/probe/devices:read", headers=_bearer(created["secret"]))
    after = (await login.client.get("/api/tokens")).json()

    assert before[0]["last_used_at"] is None
    assert after[0]["last_used_at"] is not None
    assert after[0]["last_used_from"] == "127.0.0.1"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer sft_not-a-real-token-at-all-000000000000", id="unknown-token"),
        pytest.param("Basic b3BzOnBhc3N3b3Jk", id="other-scheme"),
        pytest.param("Bearer ", id="empty"),
    ],
)
async def test_a_bad_authorization_header_is_401_never_a_session_fallback(
    trust: Trust, authorization: str
) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    response = await login.client.get(
        "/probe/devices:read", headers={"Authorization": authorization}
    )

    assert response.status_code == 401


async def test_a_disabled_operator_is_refused_on_sessions_and_tokens(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")
    created = await _token(trust, "ops@acme.example", ["read"])
    async with trust.engine.begin() as conn:
        await conn.execute(update(operators).values(disabled_at=trust.clock.now()))

    session = await login.client.get("/probe/devices:read")
    token = await trust.client().get("/probe/devices:read", headers=_bearer(created["secret"]))

    assert session.status_code == 401
    assert token.status_code == 401


async def test_the_101st_request_in_a_minute_answers_429_with_retry_after(
    store_url: str,
) -> None:
    async with trust_on(store_url) as trust:
        await trust.operator("ops@acme.example", Role.OPERATOR)
        _, secret = await trust.api_token("ops@acme.example", ["read"])
        api = trust.client()
        answers = [
            (await api.get("/probe/devices:read", headers=_bearer(secret))).status_code
            for _ in range(101)
        ]
        limited = await api.get("/probe/devices:read", headers=_bearer(secret))
        trust.clock.advance(seconds=0.6)  # 100/min refills one request every 0.6 s
        again = await api.get("/probe/devices:read", headers=_bearer(secret))

        assert answers[:100] == [200] * 100
        assert answers[100] == 429
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert limited.json()["reason"] == "rate_limited"
        assert again.status_code == 200
        # a burst of 429s is one audit entry, not one per request
        assert len(await trust.audit(reason="rate_limited")) == 1


async def test_the_rate_is_configurable_and_anonymous_floods_are_limited_too(
    store_url: str,
) -> None:
    async with trust_on(store_url, api_rate_per_minute=3) as trust:
        client = trust.client()
        answers = [(await client.get("/probe/devices:read")).status_code for _ in range(5)]

        assert answers == [401, 401, 401, 429, 429]
        assert len(await trust.audit(reason="unauthenticated")) == 3


async def test_login_posts_have_their_own_rate_limit(store_url: str) -> None:
    async with trust_on(store_url, login_rate_per_minute=2, lockout_failures=100) as trust:
        client = trust.client()
        body = {"email": "x@acme.example", "password": "wrong password!"}
        answers = [(await client.post("/api/auth/login", json=body)).status_code for _ in range(3)]

        assert answers == [401, 401, 429]


async def test_routes_without_the_dependency_stay_open(trust: Trust) -> None:
    assert (await trust.client().get("/unguarded")).status_code == 200


async def _disable_elsewhere(trust: Trust, email: str) -> None:
    """Disable an operator in the store directly, as another control-plane instance would."""
    async with trust.engine.begin() as conn:
        await conn.execute(
            update(operators).where(operators.c.email == email).values(disabled_at=1)
        )


async def test_a_change_made_on_another_instance_holds_within_the_cache_time(
    trust: Trust,
) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    _, secret = await trust.api_token("ops@acme.example", ["read"])
    api = trust.client()
    assert (await api.get("/probe/devices:read", headers=_bearer(secret))).status_code == 200
    await _disable_elsewhere(trust, "ops@acme.example")

    within = await api.get("/probe/devices:read", headers=_bearer(secret))
    trust.clock.advance(seconds=5)
    after = await api.get("/probe/devices:read", headers=_bearer(secret))

    assert within.status_code == 200  # kept for auth_cache_seconds (5 s by default)
    assert after.status_code == 401


async def test_without_the_cache_a_change_elsewhere_holds_at_once(store_url: str) -> None:
    async with trust_on(store_url, auth_cache_seconds=0) as trust:
        await trust.operator("ops@acme.example", Role.OPERATOR)
        _, secret = await trust.api_token("ops@acme.example", ["read"])
        api = trust.client()
        assert (await api.get("/probe/devices:read", headers=_bearer(secret))).is_success
        await _disable_elsewhere(trust, "ops@acme.example")

        assert (await api.get("/probe/devices:read", headers=_bearer(secret))).status_code == 401


async def test_expiry_is_exact_even_for_a_kept_session(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    _, secret = await trust.api_token("ops@acme.example", ["read"], days=1)
    api = trust.client()
    trust.clock.advance(seconds=86_400 - 2)
    assert (await api.get("/probe/devices:read", headers=_bearer(secret))).is_success

    trust.clock.advance(seconds=2)  # within the cache time of the last look-up

    assert (await api.get("/probe/devices:read", headers=_bearer(secret))).status_code == 401
