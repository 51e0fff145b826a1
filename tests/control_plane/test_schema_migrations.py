"""The tables the code defines are the schema the migrations make: autogenerate sees no diff.

Why: tables move between domain packages (``control_plane/<domain>/tables.py``) on one MetaData;
a move, a new column or an index written in one place and not the other must show here, on both
stores, before a deployment's ``alembic upgrade`` and the code disagree.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from control_plane.db.engine import make_engine, migrate
from control_plane.db.tables import metadata


def _diff(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_a_fresh_database_migrated_to_head_matches_every_table(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == []
    assert {"tenants", "devices", "journal", "sales", "commands"} <= set(metadata.tables)
