"""`storefleet operators …` as a process on both SQL stores: the first admin, tokens, refusals."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.operators.passwords import Passwords
from control_plane.operators.sessions import digest
from control_plane.operators.settings import OperatorSettings
from control_plane.operators.tables import api_tokens, audit_log, operators
from tests.control_plane.operators.trust_harness import seed_tenants

pytestmark = pytest.mark.services
STOREFLEET = Path(sys.executable).with_name("storefleet")


async def _storefleet(*args: str, url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(STOREFLEET),
        "operators",
        *args,
        "--database-url",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "STOREFLEET_AUTH_ARGON2_MEMORY_KIB": "1024"},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _rows(url: str, query: Any) -> list[dict[str, Any]]:
    engine: AsyncEngine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]
    finally:
        await engine.dispose()


async def test_create_bootstraps_an_admin_whose_printed_password_is_the_one(
    store_url: str,
) -> None:
    code, out, err = await _storefleet(
        "create", "--email", "Root@Example.com", "--role", "platform_admin", url=store_url
    )

    assert code == 0, err
    password = out.splitlines()[2]
    [row] = await _rows(store_url, select(operators))
    [entry] = await _rows(store_url, select(audit_log))
    verified = await Passwords(OperatorSettings()).verify(row["password_hash"], password)
    assert verified.ok
    assert (row["email"], row["role"], row["tenant_id"]) == (
        "root@example.com",
        "platform_admin",
        None,
    )
    assert row["password_hash"].startswith("$argon2id$")
    assert "set up an authenticator" in out
    assert entry["action"] == "operators:write"
    assert entry["actor"].startswith("cli:")
    assert password not in str(entry)


async def test_create_refuses_a_tenant_role_without_a_tenant_in_one_line(store_url: str) -> None:
    code, _, err = await _storefleet(
        "create", "--email", "ops@example.com", "--role", "operator", url=store_url
    )

    assert code == 1
    assert "belongs to a tenant; give its id" in err
    assert "Traceback" not in err


async def test_create_refuses_an_unknown_tenant_in_one_line(store_url: str) -> None:
    """The registry's TenantNotFound (one for the control plane) is a refusal, not a traceback."""
    code, _, err = await _storefleet(
        "create",
        "--email",
        "ops@example.com",
        "--role",
        "operator",
        "--tenant",
        "nosuch",
        url=store_url,
    )

    assert code == 1
    assert "tenant 'nosuch' does not exist" in err
    assert "Traceback" not in err


async def test_create_refuses_an_unknown_role(store_url: str) -> None:
    code, _, err = await _storefleet(
        "create", "--email", "ops@example.com", "--role", "superuser", url=store_url
    )

    assert code == 2
    assert "is not one of platform_admin" in err


async def test_token_create_prints_a_token_once_and_revoke_ends_it(store_url: str) -> None:
    engine = make_engine(store_url)
    await migrate(engine)
    await seed_tenants(engine)
    await engine.dispose()
    create = ("create", "--email", "ci@acme.example", "--role", "operator", "--tenant", "acme")
    assert (await _storefleet(*create, url=store_url))[0] == 0

    code, out, err = await _storefleet(
        "token", "create", "--email", "ci@acme.example", "--scope", "read", "--scope",
        "devices", url=store_url,
    )  # fmt: skip
    token_id = out.split()[1]
    secret = out.splitlines()[-1]
    revoked = await _storefleet("token", "revoke", token_id, url=store_url)
    [row] = await _rows(store_url, select(api_tokens))

    assert code == 0, err
    assert secret.startswith("sft_")
    assert row["id"] == token_id
    assert row["token_hash"] == digest(secret)
    assert row["scopes"] == "devices read"
    assert revoked[0] == 0
    assert row["revoked_at"] is not None
