"""The demo's administrator: no default password anywhere, a new random one each run."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from control_plane.db.engine import make_engine, migrate
from control_plane.demo import ADMIN_EMAIL, demo_admin
from control_plane.operators import tokens
from control_plane.operators.passwords import Passwords
from control_plane.operators.settings import OperatorSettings
from control_plane.operators.tables import operators

pytestmark = pytest.mark.services


async def test_each_run_prints_a_new_password_and_a_read_only_token(database_url: str) -> None:
    engine = make_engine(database_url)
    await migrate(engine)
    try:
        first = await demo_admin(engine)
        second = await demo_admin(engine)
        async with engine.connect() as conn:
            row = (await conn.execute(select(operators))).mappings().one()
        token = await tokens.find_token(engine, second.token)
    finally:
        await engine.dispose()
    passwords = Passwords(OperatorSettings())

    assert (row["email"], row["role"], row["tenant_id"]) == (ADMIN_EMAIL, "platform_admin", None)
    assert first.password != second.password
    assert len(second.password) >= 20
    assert (await passwords.verify(row["password_hash"], second.password)).ok
    assert not (await passwords.verify(row["password_hash"], first.password)).ok
    assert token is not None
    assert token.scopes == frozenset({"read"})
