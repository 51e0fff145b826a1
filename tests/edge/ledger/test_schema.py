"""Ledger schema migrations: numbered, applied once each, all or nothing, never downgraded."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.ledger import Ledger, LedgerError, MigrationError
from edge.ledger.schema import migrate, migrations

SALE = (
    "INSERT INTO sales (sale_id, register_id, receipt_no, journal_seq, currency, total_minor,"
    " tendered_minor, change_minor, ts) VALUES ('s', 'reg-1', 1, {journal_seq}, 'EUR', {total},"
    " 1, 0, 0)"
)
TABLES = {"journal", "replication", "counters", "sales", "sale_lines", "sale_tenders"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys=ON")
    yield connection
    connection.close()


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    found = migrations()

    assert [number for number, _ in found] == list(range(1, len(found) + 1))
    assert all(sql.strip() for _, sql in found)


def test_migrate_a_fresh_database(conn: sqlite3.Connection) -> None:
    version = migrate(conn)

    assert version == _user_version(conn) == len(migrations())
    assert _tables(conn) == TABLES
    assert conn.execute("SELECT id, acked_seq, acked_at FROM replication").fetchall() == [
        (1, 0, None)
    ]


def test_migrate_twice_runs_each_migration_once(conn: sqlite3.Connection) -> None:
    migrate(conn)

    assert migrate(conn) == len(migrations())
    assert conn.execute("SELECT count(*) FROM replication").fetchone() == (1,)


def test_a_newer_schema_is_refused_and_left_alone(conn: sqlite3.Connection) -> None:
    newer = len(migrations()) + 1
    conn.execute(f"PRAGMA user_version = {newer}")

    with pytest.raises(MigrationError, match=f"ledger schema {newer} is newer than this app"):
        migrate(conn)

    assert _user_version(conn) == newer
    assert _tables(conn) == set()


def test_a_failed_migration_rolls_back_completely(conn: sqlite3.Connection) -> None:
    # A table the first migration creates third already exists: its CREATE fails half way.
    conn.execute("CREATE TABLE counters (name TEXT)")

    with pytest.raises(MigrationError, match="migration 0001 failed"):
        migrate(conn)

    assert _user_version(conn) == 0
    assert _tables(conn) == {"counters"}


async def test_ledger_sets_user_version(path: Path) -> None:
    async with Ledger(path, register_id="reg-1"):
        pass
    conn = sqlite3.connect(path)

    assert _user_version(conn) == len(migrations())
    assert _tables(conn) == TABLES
    conn.close()


async def test_ledger_refuses_a_newer_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    ledger = Ledger(path, register_id="reg-1")

    try:
        with pytest.raises(MigrationError, match="ledger schema 99 is newer"):
            await ledger.open()
    finally:
        await ledger.close()  # a half-open ledger would keep its thread and hang the run


async def test_a_ledger_that_failed_to_open_is_not_left_open(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    ledger = Ledger(path, register_id="reg-1")

    try:
        with pytest.raises(MigrationError):
            await ledger.open()
        with pytest.raises(LedgerError, match="not open"):
            await ledger.read_records(1, 10)
    finally:
        await ledger.close()  # a half-open ledger would keep its thread and hang the run


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(
            "INSERT INTO journal VALUES (0, 'k', 0, 'p', 'h', '{}')", id="journal-seq-zero"
        ),
        pytest.param(
            "INSERT INTO journal VALUES (2, 'k', 'soon', 'h', 'h2', '{}')", id="journal-text-ts"
        ),
        pytest.param(
            "INSERT INTO journal VALUES (2, 'k', 0, 'h', NULL, '{}')", id="journal-null-hash"
        ),
        pytest.param("INSERT INTO replication (id, acked_seq) VALUES (2, 0)", id="second-ack-row"),
        pytest.param(SALE.format(journal_seq=42, total="1"), id="sale-without-record"),
        pytest.param(
            "INSERT INTO sale_lines VALUES ('nope', 1, 'sku', 'd', '1', 1, 1)",
            id="line-without-sale",
        ),
        pytest.param(SALE.format(journal_seq=1, total="1.5"), id="float-money-column"),
    ],
)
def test_schema_refuses_rows_that_break_the_ledger(conn: sqlite3.Connection, sql: str) -> None:
    migrate(conn)
    conn.execute("INSERT INTO journal VALUES (1, 'k', 0, 'p', 'h', '{}')")

    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(sql)


def test_journal_hashes_are_unique(conn: sqlite3.Connection) -> None:
    migrate(conn)
    conn.execute("INSERT INTO journal VALUES (1, 'k', 0, 'p', 'h', '{}')")

    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute("INSERT INTO journal VALUES (2, 'k', 0, 'h', 'h', '{}')")


def test_a_receipt_number_is_unique_per_register(conn: sqlite3.Connection) -> None:
    migrate(conn)
    conn.executemany(
        "INSERT INTO journal VALUES (?, 'sale.completed', 0, 'p', ?, '{}')",
        [(1, "h1"), (2, "h2"), (3, "h3")],
    )
    insert = (
        "INSERT INTO sales (sale_id, register_id, receipt_no, journal_seq, currency, total_minor,"
        " tendered_minor, change_minor, ts) VALUES (?, ?, 1, ?, 'EUR', 1, 1, 0, 0)"
    )
    conn.execute(insert, ("a", "reg-1", 1))
    conn.execute(insert, ("b", "reg-2", 2))

    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(insert, ("c", "reg-1", 3))
