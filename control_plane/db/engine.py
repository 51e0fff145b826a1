"""Engine creation and migrations for SQLite (embedded default) and PostgreSQL (scale)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
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


class DatabaseUnreachable(ConnectionError):  # noqa: N818 - named in the domain's words
    """The database did not answer ``SELECT 1``; ``cause`` says why in one line."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"the database at {safe_url(url)} does not answer: {cause}")
        self.url = safe_url(url)
        self.cause = cause


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(a URL that does not parse)"


def _cause(err: BaseException) -> str:
    """The driver's own first line: SQLAlchemy's text adds the statement and a help link."""
    inner: BaseException = err.orig if isinstance(err, DBAPIError) and err.orig else err
    if inner.__cause__ is not None and inner is not err:  # SQLAlchemy's adapter around asyncpg's
        inner = inner.__cause__
    first = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {first}" if first else type(inner).__name__


def _url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)  # masked by DatabaseUnreachable


async def ping(engine: AsyncEngine, *, timeout: float) -> None:
    """``SELECT 1`` within ``timeout`` seconds, or :class:`DatabaseUnreachable`."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError as err:
        raise DatabaseUnreachable(_url_of(engine), f"no answer in {timeout:g} s") from err
    except (DBAPIError, OSError) as err:
        raise DatabaseUnreachable(_url_of(engine), _cause(err)) from err


async def check_database(url: str, *, timeout: float = 5.0) -> None:
    """Connect once to ``url`` (its own short-lived engine) and ``SELECT 1``: the start-up check."""
    try:
        engine = make_engine(url)
    except OSError as err:  # SQLite's directory cannot be made
        raise DatabaseUnreachable(url, _cause(err)) from err
    try:
        await ping(engine, timeout=timeout)
    finally:
        await engine.dispose()


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
