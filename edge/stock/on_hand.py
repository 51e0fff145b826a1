"""Expected on-hand per GTIN, projected from the journal: what a stock count is compared with.

How it works: :class:`OnHandProjection` folds the journal in ``seq`` order into a running figure
per GTIN. A ``stock_count.committed`` event sets each GTIN it counted to the counted quantity
(the shelf was looked at: that is the new baseline, whatever came before); after it, sales take
away, returns and ``stock.received`` add back, ``stock.adjusted`` adds its signed quantity, a
``stock.transfer_sent`` takes away what left for another store and ``stock.transfer_received``
adds what arrived (:mod:`protocols.stock_transfer`; the goods in between are in no store). One
pass in order is exactly "the last count per GTIN as baseline plus the movements since".

The projection keeps its cursor, so :meth:`OnHandProjection.refresh` reads only the records
committed since the last call: asking again before every count costs the new sales, not the
year. Lines it cannot place are counted in :attr:`skipped` by reason, never guessed: an item id
the catalog mapping does not know, a sku that is not a GTIN (``cash-rounding``), a weighed
quantity (RFID counts units; weighed goods are not tagged). A figure can go negative (sold more
than the last count found); that is the ledger's truth and shows up as variance.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from edge.checkout.catalog import Catalog, CatalogView, Item
from edge.checkout.errors import UnknownItem
from edge.ledger import StoredRecord
from edge.stock.movements import (
    SALE_COMPLETED,
    SALE_RETURNED,
    STOCK_ADJUSTED,
    STOCK_COUNT_COMMITTED,
    STOCK_RECEIVED,
    STOCK_TRANSFER_RECEIVED,
    STOCK_TRANSFER_SENT,
    gtin14_or_none,
    lines_of,
    whole_quantity,
)

log = logging.getLogger(__name__)
PAGE = 1000


class JournalSource(Protocol):
    """The ledger's read side (``Ledger.read_records``)."""

    async def read_records(self, from_seq: int, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` records from ``from_seq`` on, in order."""
        ...


def catalog_gtins(catalog: Iterable[Item]) -> dict[str, str]:
    """Item id → its first GTIN-14, from the register's catalog (sale lines carry item ids)."""
    out: dict[str, str] = {}
    for item in catalog:
        gtin = next((g for c in item.gtins if (g := gtin14_or_none(c)) is not None), None)
        if gtin is not None:
            out[item.id] = gtin
    return out


class CatalogGtins(Mapping[str, str]):
    """Item id → its first GTIN-14, asked of the register's catalog one item at a time.

    :func:`catalog_gtins` walks every item: 100,000 of them cost seconds at the register's start
    (the catalog is read from ``catalog.db`` by index, :mod:`edge.pos.catalog_store`), while a
    count only asks for the items the journal's sales name. Follows the catalog's changes; an
    item no longer active is not found (its lines are then counted by their own code, if a GTIN).
    """

    def __init__(self, catalog: CatalogView) -> None:
        self._catalog = catalog

    def __getitem__(self, item_id: str) -> str:
        try:
            item = self._catalog.by_id(item_id)
        except UnknownItem as err:
            raise KeyError(item_id) from err
        gtin = next((g for c in item.gtins if (g := gtin14_or_none(c)) is not None), None)
        if gtin is None:
            raise KeyError(item_id)
        return gtin

    def __iter__(self) -> Iterator[str]:
        return (item.id for item in self._catalog)

    def __len__(self) -> int:
        return len(self._catalog)


class OnHandProjection:
    """``await projection.refresh()`` returns GTIN-14 → expected units on hand."""

    def __init__(self, *, journal: JournalSource, item_gtins: Mapping[str, str] | None = None):
        self._journal = journal
        self._item_gtins: Mapping[str, str] = (
            item_gtins  # already GTIN-14s, looked up when a sale names the item
            if isinstance(item_gtins, CatalogGtins)
            else {k: gtin14_or_none(v) or v for k, v in (item_gtins or {}).items()}
        )
        self._on_hand: Counter[str] = Counter()
        self._next_seq = 1
        self.skipped: Counter[str] = Counter()

    @classmethod
    def for_catalog(cls, *, journal: JournalSource, catalog: Catalog) -> OnHandProjection:
        """A projection that maps the register's item ids through its catalog."""
        return cls(journal=journal, item_gtins=catalog_gtins(catalog))

    @property
    def seq(self) -> int:
        """The last journal seq folded in."""
        return self._next_seq - 1

    async def refresh(self) -> dict[str, int]:
        """Fold in every record committed since the last call and return the figures."""
        while records := await self._journal.read_records(self._next_seq, PAGE):
            for stored in records:
                self._fold(stored)
                self._next_seq = stored.seq + 1
        return self.expected()

    def expected(self) -> dict[str, int]:
        """The figures as of :attr:`seq` (GTINs whose figure is 0 after movements included)."""
        return dict(self._on_hand)

    def _fold(self, stored: StoredRecord) -> None:
        record = json.loads(stored.record)
        kind, body = record.get("kind"), record.get("body")
        if not isinstance(body, Mapping):
            return
        if kind == STOCK_COUNT_COMMITTED:
            for line in lines_of(body):
                gtin, counted = line.get("gtin"), line.get("counted")
                if isinstance(gtin, str) and isinstance(counted, int):
                    self._on_hand[gtin] = counted
        elif kind == SALE_COMPLETED:
            self._move(body, key="sku", quantity="quantity", sign=-1)
        elif kind == SALE_RETURNED:
            self._move(body, key="item_id", quantity="quantity", sign=+1)
        elif kind in (STOCK_RECEIVED, STOCK_ADJUSTED, STOCK_TRANSFER_RECEIVED):
            self._move(body, key="gtin", quantity="quantity", sign=+1)
        elif kind == STOCK_TRANSFER_SENT:
            self._move(body, key="gtin", quantity="quantity", sign=-1)

    def _move(self, body: Mapping[str, object], *, key: str, quantity: str, sign: int) -> None:
        for line in lines_of(body):
            code = line.get(key)
            if not isinstance(code, str):
                self.skipped["no_code"] += 1
                continue
            gtin = self._item_gtins.get(code) or gtin14_or_none(code)
            if gtin is None:
                self.skipped["not_a_gtin"] += 1
                continue
            units = whole_quantity(line.get(quantity))
            if units is None:
                self.skipped["not_whole_units"] += 1
                continue
            self._on_hand[gtin] += sign * units


async def expected_on_hand(
    journal: JournalSource, *, item_gtins: Mapping[str, str] | None = None
) -> dict[str, int]:
    """One-off projection of the whole journal (tests, tools); the hub keeps a projection."""
    return await OnHandProjection(journal=journal, item_gtins=item_gtins).refresh()
