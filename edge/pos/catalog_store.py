"""``catalog.db``: the register's catalog kept in SQLite, read by index when a scan asks.

How it works: a register used to parse its whole catalog snapshot (JSON) into memory at every
start — 2 s of CPU and ~60 MB for 100,000 items before the first sale. Now the snapshot is
written once into ``<data_dir>/catalog.db`` (:func:`import_snapshot`: the first start after
enrolment, or a full reload from the control plane) and every start after that only opens the
file: a scan is an indexed read of one row, a search walks the name index until it has enough.

* ``items`` holds one row per item (its wire fields, ``name_key`` the case-folded name);
  ``item_keys`` maps ``(kind, key)`` — kind ``gtin``, ``plu`` or ``sku`` — to the item id, the
  same keys :class:`~edge.checkout.catalog.Catalog` indexes (a snapshot is built into that
  in-memory catalog first and its indexes copied, so both answer alike by construction);
  ``meta`` holds the catalog ``version``.
* A snapshot is written into ``catalog.db.new`` in a worker thread and renamed over
  ``catalog.db``: the file is whole or absent, never half-imported, and the till keeps selling
  from the old file until the rename. Change sets are small (a price change) and are applied
  in one transaction on the register's own thread, with the in-memory catalog's rules (a stale
  base version is refused and changes nothing).
* The file uses a rollback journal, not WAL: it is written rarely and renamed whole, which a
  ``-wal`` file beside it would not survive.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edge.checkout.barcodes import EmbeddedPrice, EmbeddedWeight, Gtin, ParsedBarcode, Plu
from edge.checkout.catalog import (
    GTIN_LENGTHS,
    Catalog,
    ChangeSet,
    Item,
    SoldBy,
    gtin_forms,
    gtin_key,
)
from edge.checkout.errors import CatalogVersionConflict, UnknownItem
from edge.pos.catalog_source import catalog_from_json

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    price_minor INTEGER NOT NULL,
    tax_class TEXT NOT NULL,
    department TEXT NOT NULL,
    gtins TEXT NOT NULL,
    plu TEXT,
    sku TEXT,
    sold_by TEXT NOT NULL,
    active INTEGER NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX items_by_name ON items (name_key, id) WHERE active = 1;
CREATE TABLE item_keys (
    kind TEXT NOT NULL, key TEXT NOT NULL, item_id TEXT NOT NULL, PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""
_COLUMNS = "id, name, price_minor, tax_class, department, gtins, plu, sku, sold_by, active, version"
_NAME_SEP = "\0"  # as the in-memory name index: a name never matches across it
_LAST_CHAR = "\U0010ffff"


class CatalogStoreError(Exception):
    """``catalog.db`` cannot be read as a catalog (``path`` says which file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _row(item: Item) -> tuple[object, ...]:
    return (
        item.id,
        item.name,
        item.name.casefold().replace(_NAME_SEP, " "),
        item.price_minor,
        item.tax_class,
        item.department,
        json.dumps(list(item.gtins)),
        item.plu,
        item.sku,
        item.sold_by.value,
        int(item.active),
        item.version,
    )


def _item(row: tuple[Any, ...]) -> Item:
    (item_id, name, price, tax_class, department, gtins, plu, sku, sold_by, active, version) = row
    return Item(
        id=item_id,
        name=name,
        price_minor=price,
        tax_class=tax_class,
        department=department,
        gtins=tuple(json.loads(gtins)),
        plu=plu,
        sku=sku,
        sold_by=SoldBy(sold_by),
        active=bool(active),
        version=version,
    )


def write_catalog(path: Path, catalog: Catalog) -> None:
    """Write ``catalog`` as a new ``catalog.db`` at ``path`` (whole, then renamed into place)."""
    fresh = path.with_name(path.name + ".new")
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh.unlink(missing_ok=True)
    conn = sqlite3.connect(fresh)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a new file: nothing to roll back to
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('version', ?)", (catalog.version,))
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_row(item) for item in catalog),
        )
        conn.executemany("INSERT INTO item_keys VALUES (?, ?, ?)", catalog.keys())
        conn.commit()
    finally:
        conn.close()
    with fresh.open("rb") as written:
        os.fsync(written.fileno())
    os.replace(fresh, path)
    log.info("catalog version %d (%d items) written to %s", catalog.version, len(catalog), path)


def import_snapshot(path: Path, snapshot: str | bytes) -> None:
    """A snapshot document (JSON) into ``catalog.db``; CatalogFormatError if it is not one.

    Slow (seconds for 100,000 items) and blocking: call it in a worker thread.
    """
    write_catalog(path, catalog_from_json(snapshot, index_names=False))


class StoredCatalog:
    """The catalog in ``catalog.db``; the same answers as :class:`~edge.checkout.catalog.Catalog`.

    Used from the register's event loop thread only; reads are single indexed rows.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn, self._version, self._count = self._open(path)

    @staticmethod
    def _open(path: Path) -> tuple[sqlite3.Connection, int, int]:
        """A connection, the stored version and the number of items; or CatalogStoreError."""
        if not path.exists():
            raise CatalogStoreError(path, "no catalog has been stored yet")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            (version,) = conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            (count,) = conn.execute("SELECT count(*) FROM items").fetchone()
        except (sqlite3.DatabaseError, TypeError) as err:
            conn.close()
            raise CatalogStoreError(path, f"not a stored catalog ({err})") from err
        return conn, int(version), int(count)

    def close(self) -> None:
        """Close the file (the register is stopping)."""
        self._conn.close()

    def reopen(self) -> None:
        """Read the file again: a new snapshot was renamed over it."""
        old = self._conn
        self._conn, self._version, self._count = self._open(self.path)
        old.close()

    @property
    def version(self) -> int:
        """The catalog version stored."""
        return self._version

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Item]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM items ORDER BY id").fetchall()
        return (_item(row) for row in rows)

    # -- lookups --------------------------------------------------------------------------------

    def _get(self, item_id: str | None) -> Item | None:
        if item_id is None:
            return None
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM items WHERE id=?", (item_id,)).fetchone()
        return None if row is None else _item(row)

    def _owner(self, kind: str, key: str) -> str | None:
        row = self._conn.execute(
            "SELECT item_id FROM item_keys WHERE kind=? AND key=?", (kind, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def _active(self, item_id: str | None, key: str, kind: str) -> Item:
        item = self._get(item_id)
        if item is None or not item.active:
            raise UnknownItem(key=key, kind=kind)
        return item

    def by_id(self, item_id: str) -> Item:
        """The active item with this id."""
        return self._active(item_id, item_id, "id")

    def by_gtin(self, gtin14: str) -> Item:
        """The active item for a GTIN-14 or an in-store item key."""
        owner = next(
            (o for form in gtin_forms(gtin14) if (o := self._owner("gtin", form)) is not None),
            None,
        )
        return self._active(owner, gtin14, "GTIN")

    def by_plu(self, plu: str) -> Item:
        """The active item for a PLU code."""
        return self._active(self._owner("plu", plu), plu, "PLU")

    def by_sku(self, sku: str) -> Item:
        """The active item for a SKU."""
        return self._active(self._owner("sku", sku), sku, "SKU")

    def lookup(self, scanned: ParsedBarcode) -> Item:
        """The active item for a parsed scan: GTIN, in-store key of an embedded code, or PLU."""
        if isinstance(scanned, Gtin):
            return self.by_gtin(scanned.gtin14)
        if isinstance(scanned, (EmbeddedPrice, EmbeddedWeight)):
            return self.by_gtin(scanned.item_key)
        if isinstance(scanned, Plu):
            return self.by_plu(scanned.code)
        raise TypeError(f"not a parsed barcode: {scanned!r}")

    def search(self, text: str, *, limit: int = 20) -> list[Item]:
        """Active items whose name starts with ``text`` first, then those containing it."""
        needle = text.casefold().strip()
        if not needle or limit <= 0:
            return []
        starting = self._conn.execute(
            f"SELECT {_COLUMNS} FROM items WHERE active = 1 AND name_key >= ? AND name_key < ?"
            " ORDER BY name_key, id LIMIT ?",
            (needle, needle + _LAST_CHAR, limit),
        ).fetchall()
        hits = [_item(row) for row in starting]
        if len(hits) < limit and _NAME_SEP not in needle:
            seen = {item.id for item in hits}
            containing = self._conn.execute(
                f"SELECT {_COLUMNS} FROM items WHERE active = 1 AND instr(name_key, ?) > 0"
                " ORDER BY name_key, id",
                (needle,),
            )
            for row in containing:
                item = _item(row)
                if item.id not in seen:
                    hits.append(item)
                    if len(hits) == limit:
                        break
        return hits

    # -- changes --------------------------------------------------------------------------------

    def apply(self, change: ChangeSet) -> None:
        """Apply a change set whose base is this catalog's version; otherwise refuse it."""
        if change.base_version != self._version or change.version <= change.base_version:
            raise CatalogVersionConflict(
                catalog_version=self._version,
                base_version=change.base_version,
                version=change.version,
            )
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item_id in change.deletes:
                self._drop(item_id)
            for item in change.upserts:
                self._put(item)
            conn.execute("UPDATE meta SET value=? WHERE key='version'", (change.version,))
            (count,) = conn.execute("SELECT count(*) FROM items").fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._version, self._count = change.version, int(count)

    def _put(self, item: Item) -> None:
        """As :meth:`Catalog._put`: the last item put takes a key (and every form of a GTIN)."""
        self._drop(item.id)
        self._conn.execute(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(item)
        )
        keys: list[tuple[str, str]] = []
        for gtin in item.gtins:
            key = gtin_key(gtin)
            if len(key) in GTIN_LENGTHS:
                self._conn.executemany(
                    "DELETE FROM item_keys WHERE kind='gtin' AND key=?",
                    ((form,) for form in gtin_forms(key.zfill(14))),
                )
            keys.append(("gtin", key))
        keys += [("plu", item.plu)] if item.plu is not None else []
        keys += [("sku", item.sku)] if item.sku is not None else []
        self._conn.executemany(
            "INSERT OR REPLACE INTO item_keys VALUES (?, ?, ?)",
            ((kind, key, item.id) for kind, key in keys),
        )

    def _drop(self, item_id: str) -> None:
        old = self._get(item_id)
        if old is None:
            return
        self._conn.execute("DELETE FROM items WHERE id=?", (item_id,))
        keyed: Iterable[tuple[str, str | None]] = [
            *(("gtin", gtin_key(g)) for g in old.gtins),
            ("plu", old.plu),
            ("sku", old.sku),
        ]
        self._conn.executemany(
            "DELETE FROM item_keys WHERE kind=? AND key=? AND item_id=?",
            ((kind, key, item_id) for kind, key in keyed if key is not None),
        )
