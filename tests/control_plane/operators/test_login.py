"""Logging in on both SQL stores: passwords, lockout, TOTP for admins, session expiry, logout."""

from __future__ import annotations

import pytest

from control_plane.operators import totp
from control_plane.operators.principal import Role
from tests.control_plane.operators.trust_harness import Trust

pytestmark = pytest.mark.services


async def test_right_password_opens_a_session_that_the_api_accepts(trust: Trust) -> None:
    await trust.operator("Ops@Acme.example", Role.OPERATOR)

    login = await trust.login("ops@acme.example")
    me = await login.client.get("/api/auth/me")

    assert me.status_code == 200, me.text
    assert me.json()["email"] == "ops@acme.example"
    assert me.json()["tenant_id"] == "acme"
    assert "catalog:write" in me.json()["actions"]
    assert [e["outcome"] for e in await trust.audit(action="auth:login")] == ["ok"]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        pytest.param("ops@acme.example", "wrong password!", id="wrong-password"),
        pytest.param("nobody@acme.example", "wrong password!", id="unknown-email"),
    ],
)
async def test_wrong_password_and_unknown_email_get_the_same_answer(
    trust: Trust, email: str, password: str
) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    client = trust.client()

    response = await client.post("/api/auth/login", json={"email": email, "password": password})

    assert response.status_code == 401
    assert response.json()["reason"] == "login_refused"
    assert response.json()["detail"] == "wrong email, password or code"
    assert "sf_session" not in response.cookies
    [entry] = await trust.audit(action="auth:login")
    assert (entry["outcome"], entry["target"]) == ("refused", email)


async def test_five_failures_lock_the_account_even_for_the_right_password(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    client = trust.client()
    wrong = {"email": "ops@acme.example", "password": "not the password"}
    for _ in range(5):
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401

    right = {"email": "ops@acme.example", "password": trust.passwords["ops@acme.example"]}
    locked = await client.post("/api/auth/login", json=right)

    assert locked.status_code == 423
    assert locked.json()["reason"] == "locked_out"
    assert locked.headers["Retry-After"] == str(15 * 60)
    reasons = [e["reason"] for e in await trust.audit(action="auth:login")]
    assert reasons[-2:] == ["wrong_password, now locked out", "locked_out"]


async def test_a_lockout_ends_after_its_time_and_a_success_clears_the_count(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    client = trust.client()
    wrong = {"email": "ops@acme.example", "password": "not the password"}
    right = {"email": "ops@acme.example", "password": trust.passwords["ops@acme.example"]}
    for _ in range(5):
        await client.post("/api/auth/login", json=wrong)
    trust.clock.advance(seconds=15 * 60)

    assert (await client.post("/api/auth/login", json=right)).status_code == 200
    for _ in range(4):  # the count started again at zero: four more failures do not lock
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    assert (await client.post("/api/auth/login", json=right)).status_code == 200


async def test_unknown_emails_lock_out_too_so_a_lockout_reveals_no_account(trust: Trust) -> None:
    client = trust.client()
    wrong = {"email": "ghost@acme.example", "password": "not the password"}
    for _ in range(5):
        await client.post("/api/auth/login", json=wrong)

    assert (await client.post("/api/auth/login", json=wrong)).status_code == 423


async def test_admin_sets_up_totp_at_first_login_then_needs_a_code(trust: Trust) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)

    await trust.admin_login("boss@acme.example")  # enrols: QR page, first code
    client = trust.client()
    password = trust.passwords["boss@acme.example"]
    without = await client.post(
        "/api/auth/login", json={"email": "boss@acme.example", "password": password}
    )
    trust.clock.advance(seconds=30)  # the enrolment's code was used: take the next step's
    code = totp.code_at(await trust.totp_seed("boss@acme.example"), now_ms=trust.clock.now())
    with_code = await client.post(
        "/api/auth/login",
        json={"email": "boss@acme.example", "password": password, "totp": code},
    )

    assert without.status_code == 401
    assert without.json()["reason"] == "totp_required"
    assert "sf_session" not in without.cookies
    assert with_code.status_code == 200, with_code.text
    actions = [e["action"] for e in await trust.audit(outcome="ok")]
    assert actions.count("auth:totp_enrol") == 1


async def test_a_totp_code_is_refused_the_second_time(trust: Trust) -> None:
    await trust.operator("root@platform.example", Role.PLATFORM_ADMIN)
    await trust.admin_login("root@platform.example")
    seed = await trust.totp_seed("root@platform.example")
    used = totp.code_at(seed, now_ms=trust.clock.now())  # the one admin_login just sent
    client = trust.client()

    replay = await client.post(
        "/api/auth/login",
        json={
            "email": "root@platform.example",
            "password": trust.passwords["root@platform.example"],
            "totp": used,
        },
    )

    assert replay.status_code == 401
    assert replay.json()["reason"] == "login_refused"
    [entry] = await trust.audit(action="auth:totp", outcome="refused")
    assert entry["reason"] == "wrong_code"


async def test_the_totp_page_shows_the_authenticator_qr_only_until_enrolled(trust: Trust) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    client = trust.client()
    await client.get("/login")
    await client.post(
        "/login",
        data={
            "email": "boss@acme.example",
            "password": trust.passwords["boss@acme.example"],
            "csrf_token": client.cookies["sf_login_csrf"],
        },
    )

    first = await client.get("/login/totp")
    seed = await trust.totp_seed("boss@acme.example")
    again = await client.get("/login/totp")

    assert first.status_code == 200
    assert 'id="totp-qr"' in first.text
    assert seed in first.text
    assert seed in again.text  # a reload shows the same seed, not a new one
    # a half-finished admin login opens nothing but the code page
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_a_wrong_code_is_refused_and_counts_toward_the_lockout(trust: Trust) -> None:
    await trust.operator("boss@acme.example", Role.TENANT_ADMIN)
    await trust.admin_login("boss@acme.example")
    client = trust.client()
    body = {
        "email": "boss@acme.example",
        "password": trust.passwords["boss@acme.example"],
        "totp": "000000",
    }
    answers = [(await client.post("/api/auth/login", json=body)).status_code for _ in range(6)]

    assert answers == [401, 401, 401, 401, 401, 423]


async def test_an_idle_session_expires_and_activity_keeps_it_alive(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    busy = await trust.login("ops@acme.example")
    idle = await trust.login("ops@acme.example")
    for _ in range(4):  # 4 × 10 min with requests: 40 minutes, never 30 idle
        trust.clock.advance(seconds=10 * 60)
        assert (await busy.client.get("/api/auth/me")).status_code == 200

    answer = await idle.client.get("/api/auth/me")

    assert answer.status_code == 401
    assert "idle" in answer.json()["detail"]


async def test_a_busy_session_still_ends_at_its_absolute_expiry(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")
    for _ in range(12 * 4 - 1):  # 15-minute steps up to 11h45
        trust.clock.advance(seconds=15 * 60)
        assert (await login.client.get("/api/auth/me")).status_code == 200

    trust.clock.advance(seconds=15 * 60)
    answer = await login.client.get("/api/auth/me")

    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


async def test_logout_ends_the_session_for_every_copy_of_its_cookie(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")
    stolen = trust.client()
    stolen.cookies.set("sf_session", login.client.cookies["sf_session"])

    response = await login.client.post("/api/auth/logout", headers={"X-CSRF-Token": login.csrf})

    assert response.status_code == 204
    assert (await stolen.get("/api/auth/me")).status_code == 401
    assert [e["outcome"] for e in await trust.audit(action="auth:logout")] == ["ok"]


async def test_console_logout_form_needs_the_session_csrf_token(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    login = await trust.login("ops@acme.example")

    forged = await login.client.post("/logout", data={})
    still = await login.client.get("/api/auth/me")
    real = await login.client.post("/logout", data={"csrf_token": login.csrf})

    assert forged.status_code == 403
    assert still.status_code == 200
    assert real.status_code == 303
    assert real.headers["location"] == "/login"
    assert (await login.client.get("/api/auth/me")).status_code == 401


async def test_session_cookie_is_httponly_strict_and_secure_over_https(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    body = {"email": "ops@acme.example", "password": trust.passwords["ops@acme.example"]}

    plain = await trust.client().post("/api/auth/login", json=body)
    tls = await trust.client(base_url="https://testserver").post("/api/auth/login", json=body)

    plain_cookie = plain.headers["set-cookie"].lower()
    tls_cookie = tls.headers["set-cookie"].lower()
    assert "httponly" in plain_cookie
    assert "samesite=strict" in plain_cookie
    assert "secure" not in plain_cookie
    assert "httponly" in tls_cookie
    assert "samesite=strict" in tls_cookie
    assert "; secure" in tls_cookie


async def test_login_form_without_its_csrf_nonce_is_refused(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    client = trust.client()

    response = await client.post(
        "/login",
        data={"email": "ops@acme.example", "password": trust.passwords["ops@acme.example"]},
    )

    assert response.status_code == 401
    assert "another site" in response.text
    assert "sf_session" not in response.cookies


async def test_login_form_redirects_only_to_paths_on_this_site(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    client = trust.client()
    await client.get("/login")

    response = await client.post(
        "/login",
        data={
            "email": "ops@acme.example",
            "password": trust.passwords["ops@acme.example"],
            "csrf_token": client.cookies["sf_login_csrf"],
            "next": "//evil.example/",
        },
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/"
