"""Numbered schema migrations for the appliance ledger.

Files ``migrations/NNNN_name.sql`` run in order inside one transaction each; ``PRAGMA
user_version`` records the last one applied, so a migration runs exactly once even if the power
fails half way (the transaction rolls back and it runs again on the next start).
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from edge.ledger.errors import MigrationError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str]]:
    """All packaged migrations as (number, SQL), in order."""
    found = []
    for entry in resources.files("edge.ledger.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    found.sort()
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise MigrationError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return found


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version now in force."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    available = migrations()
    if current > len(available):
        raise MigrationError(
            f"ledger schema {current} is newer than this app ({len(available)}); "
            "install the newer release or restore the previous slot"
        )
    for number, sql in available[current:]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {number:04d} failed: {err}") from err
    return len(available)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
