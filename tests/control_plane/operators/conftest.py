"""Fixtures of the operators tests: the domain on SQLite and on PostgreSQL, on a test clock.

The store fixture is this package's own (not the suite's ``database_url``) so these tests need
nothing of the rest of the control plane: they run with ``--confcutdir`` on this directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.control_plane.operators.trust_harness import Trust, trust_on
from tests.harness.services import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The cloud store: embedded SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"
        return
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture
async def trust(store_url: str) -> AsyncIterator[Trust]:
    """The operators domain with default limits (5 failures lock out, 100 requests/min)."""
    async with trust_on(store_url) as running:
        yield running
