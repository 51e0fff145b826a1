"""Engine creation and migrations for SQLite (embedded default) and PostgreSQL (scale)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names the embedded SQLite store."""
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so API and ingest can share it."""
    if is_sqlite(url):
        if url.count("/") >= 3:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to every head; safe from several instances at once on PostgreSQL.

    Domains add their migrations independently, so there may be more than one head.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # one instance migrates at a time; the others wait and then find nothing to do
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74657301)")
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "heads"))


def migrate_blocking(url: str) -> None:
    """Migrate from synchronous code (CLI)."""

    async def run() -> None:
        engine = make_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
