"""WAL checkpoints off the sale's path.

SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, so one sale in a
few hundred pays for copying the whole WAL back into the database file: that is the p99 of a
sale. The ledger turns the automatic checkpoint off and this thread, with its own connection,
runs a PASSIVE checkpoint every ``interval`` seconds instead. PASSIVE never blocks the writer;
with ``synchronous=FULL`` on this connection too, what it copies is as durable as the commit was.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class Checkpointer:
    """A daemon thread checkpointing one WAL database until :meth:`stop`."""

    def __init__(self, path: str | Path, *, interval: float = 0.5) -> None:
        self.path = str(path)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoint", daemon=True)
        self.failures = 0

    def start(self) -> None:
        """Begin checkpointing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after one last checkpoint, so a clean shutdown leaves a short WAL."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=1000")
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as err:  # busy or I/O: the next round tries again
                    self.failures += 1
                    log.warning("ledger %s: checkpoint failed (%s); retrying", self.path, err)
                if stopping:
                    return
        finally:
            conn.close()
