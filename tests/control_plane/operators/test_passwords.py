"""argon2id parameters: OWASP's by default, and a hash made with other ones still logs in and is
rehashed at that login (issue 9: t=3, 64 MiB, p=4 cost ~0.5 s per login on a 2-core node)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from control_plane.operators.settings import OperatorSettings
from control_plane.operators.tables import operators
from tests.control_plane.operators.trust_harness import Trust

pytestmark = pytest.mark.services

#: The parameters every hash had before this change (RFC 9106's second profile).
OLD = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4)


def test_default_hashes_are_argon2id_with_owasp_parameters() -> None:
    stored = Passwords(OperatorSettings()).hash_blocking("correct horse battery")

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_parameters_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFLEET_AUTH_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("STOREFLEET_AUTH_ARGON2_TIME_COST", "3")

    stored = Passwords(OperatorSettings()).hash_blocking("correct horse battery")

    assert stored.startswith("$argon2id$v=19$m=8192,t=3,p=1$")


async def _stored_hash(trust: Trust, email: str) -> str:
    async with trust.engine.connect() as conn:
        found = await conn.scalar(
            select(operators.c.password_hash).where(operators.c.email == email)
        )
    return str(found)


async def test_a_hash_with_the_old_parameters_logs_in_and_is_rehashed(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    password = trust.passwords["ops@acme.example"]
    async with trust.engine.begin() as conn:
        await conn.execute(
            update(operators)
            .where(operators.c.email == "ops@acme.example")
            .values(password_hash=OLD.hash(password))
        )

    login = await trust.login("ops@acme.example")
    rehashed = await _stored_hash(trust, "ops@acme.example")

    assert (await login.client.get("/api/auth/me")).status_code == 200
    params = trust.gatekeeper.passwords.parameters
    assert rehashed.startswith(
        f"$argon2id$v=19$m={params['memory_kib']},t={params['time_cost']},"
        f"p={params['parallelism']}$"
    )
    assert (await trust.gatekeeper.passwords.verify(rehashed, password)).ok


async def test_a_wrong_password_never_rehashes(trust: Trust) -> None:
    await trust.operator("ops@acme.example", Role.OPERATOR)
    old = OLD.hash(trust.passwords["ops@acme.example"])
    async with trust.engine.begin() as conn:
        await conn.execute(
            update(operators)
            .where(operators.c.email == "ops@acme.example")
            .values(password_hash=old)
        )
    client = trust.client()

    refused = await client.post(
        "/api/auth/login", json={"email": "ops@acme.example", "password": "not the password"}
    )

    assert refused.status_code == 401
    assert await _stored_hash(trust, "ops@acme.example") == old
