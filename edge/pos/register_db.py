"""``pos.db``: what the register keeps beside the ledger — parked sales, lockouts, an index.

How it works: the ledger is the book of record and this file never holds a business fact the
ledger lacks. It keeps (a) parked carts and PIN lockout state, which are not business events,
and (b) an index from receipt numbers and original sales to journal ``seq``s plus the ``seq`` of
the open shift's ``shift.opened``, so a return or a restart reads a few records instead of the
whole journal. The index is derived: ``indexed_seq`` says how far it has read, and on start the
register catches up from there, so a crash between a ledger commit and an index write loses
nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from edge.checkout.staff import LockoutState
from edge.sqlite_thread import SqliteClosedError, SqliteThread

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS parked (
    cart_id TEXT PRIMARY KEY, parked_at TEXT NOT NULL, cashier_id TEXT NOT NULL,
    label TEXT NOT NULL, cart TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lockouts (
    employee_id TEXT PRIMARY KEY, failed INTEGER NOT NULL, locked_until TEXT);
CREATE TABLE IF NOT EXISTS receipts (
    receipt_no INTEGER PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS returns (
    original_sale_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (original_sale_id, seq));
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS loyalty_balances (customer_id TEXT PRIMARY KEY, balance TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class ParkedCart:
    """A parked sale as listed on the kiosk; ``cart`` is the cart codec's JSON."""

    cart_id: str
    parked_at: datetime
    cashier_id: str
    label: str
    cart: str


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What one journal record adds to the index."""

    seq: int
    receipt_no: int | None = None
    kind: str = ""
    original_sale_id: str | None = None
    shift_opened: bool = False


class RegisterDb:
    """The register's own SQLite file; ``async with RegisterDb(path) as db``."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db: SqliteThread | None = None

    async def __aenter__(self) -> Self:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await SqliteThread.open(self.path, name="pos.db", setup=self._setup)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @staticmethod
    def _setup(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a parked cart must survive a power cut too
        conn.executescript(SCHEMA)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """One unit of work on pos.db's own thread (the same primitive the ledger uses)."""
        if self._db is None:
            raise RuntimeError("pos.db is not open")
        try:
            return await self._db.call(fn)
        except SqliteClosedError as err:  # closed while this call was on its way
            raise RuntimeError("pos.db is not open") from err

    # -- parked sales ---------------------------------------------------------------------------

    async def park(self, parked: ParkedCart) -> None:
        await self._call(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO parked VALUES (?, ?, ?, ?, ?)",
                (
                    parked.cart_id,
                    parked.parked_at.isoformat(),
                    parked.cashier_id,
                    parked.label,
                    parked.cart,
                ),
            )
        )

    async def parked(self) -> list[ParkedCart]:
        rows = await self._call(
            lambda c: c.execute("SELECT * FROM parked ORDER BY parked_at").fetchall()
        )
        return [ParkedCart(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4]) for r in rows]

    async def unpark(self, cart_id: str) -> ParkedCart | None:
        """Take a parked sale out (None when another screen took it first)."""

        def run(c: sqlite3.Connection) -> ParkedCart | None:
            rows = c.execute(
                "DELETE FROM parked WHERE cart_id = ?"
                " RETURNING cart_id, parked_at, cashier_id, label, cart",
                (cart_id,),
            ).fetchall()
            if not rows:
                return None
            got = rows[0]
            return ParkedCart(got[0], datetime.fromisoformat(got[1]), got[2], got[3], got[4])

        return await self._call(run)

    # -- lockouts -------------------------------------------------------------------------------

    async def lockout(self, employee_id: str) -> LockoutState:
        row = await self._call(
            lambda c: c.execute(
                "SELECT failed, locked_until FROM lockouts WHERE employee_id = ?", (employee_id,)
            ).fetchone()
        )
        if row is None:
            return LockoutState()
        until = None if row[1] is None else datetime.fromisoformat(row[1])
        return LockoutState(int(row[0]), until)

    async def save_lockout(self, employee_id: str, state: LockoutState) -> None:
        until = None if state.locked_until is None else state.locked_until.isoformat()
        await self._call(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO lockouts VALUES (?, ?, ?)",
                (employee_id, state.failed_attempts, until),
            )
        )

    # -- the journal index ----------------------------------------------------------------------

    async def state(self, key: str) -> int:
        row = await self._call(
            lambda c: c.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def index(self, entries: Iterable[IndexEntry], *, upto_seq: int) -> None:
        """Add entries and move ``indexed_seq`` to ``upto_seq`` in one transaction."""
        batch = list(entries)

        def run(c: sqlite3.Connection) -> None:
            c.execute("BEGIN")
            try:
                for e in batch:
                    if e.receipt_no is not None:
                        c.execute(
                            "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?)",
                            (e.receipt_no, e.seq, e.kind),
                        )
                    if e.original_sale_id is not None:
                        c.execute(
                            "INSERT OR IGNORE INTO returns VALUES (?, ?)",
                            (e.original_sale_id, e.seq),
                        )
                    if e.shift_opened:
                        c.execute("INSERT OR REPLACE INTO state VALUES ('shift_seq', ?)", (e.seq,))
                c.execute(
                    "INSERT INTO state VALUES ('indexed_seq', ?) ON CONFLICT (key)"
                    " DO UPDATE SET value = max(value, excluded.value)",
                    (upto_seq,),
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._call(run)

    async def receipt_seq(self, receipt_no: int) -> tuple[int, str] | None:
        """The journal seq and kind of the record that carries ``receipt_no``."""
        row = await self._call(
            lambda c: c.execute(
                "SELECT seq, kind FROM receipts WHERE receipt_no = ?", (receipt_no,)
            ).fetchone()
        )
        return None if row is None else (int(row[0]), str(row[1]))

    async def return_seqs(self, original_sale_id: str) -> list[int]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT seq FROM returns WHERE original_sale_id = ? ORDER BY seq",
                (original_sale_id,),
            ).fetchall()
        )
        return [int(r[0]) for r in rows]

    # -- loyalty balances last seen (issue 14) --------------------------------------------------

    async def loyalty_balance(self, customer_id: str) -> str | None:
        """The stored balance of ``customer_id`` (the loyalty desk's JSON), or None."""
        row = await self._call(
            lambda c: c.execute(
                "SELECT balance FROM loyalty_balances WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def save_loyalty_balance(self, customer_id: str, balance: str) -> None:
        """Keep ``balance`` (the loyalty desk's JSON) for ``customer_id``."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO loyalty_balances VALUES (?, ?)", (customer_id, balance)
            )

        await self._call(run)
