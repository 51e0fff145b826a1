"""WAL checkpoints happen off the sale's path, and the WAL does not grow without bound."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from tests.harness.services import wait_until


async def test_background_checkpoint_copies_committed_sales_into_the_database_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    async with Ledger(path, register_id="1") as ledger:
        autocheckpoint = await ledger._call(
            lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        )
        assert autocheckpoint == 0  # no sale pays for a checkpoint
        size_before = path.stat().st_size
        await ring_sales(ledger, RingSettings(rate=0, count=300, seed=2))
        await wait_until(
            lambda: path.stat().st_size > size_before, what="the checkpointer to copy pages"
        )
    # after a clean close everything is in the database file itself: read it without the WAL
    (tmp_path / "ledger.db-wal").unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sales").fetchone()[0] == 300
