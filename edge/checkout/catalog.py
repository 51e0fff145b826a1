"""The register's in-memory catalog: O(1) lookup by GTIN, PLU, SKU and in-store key.

How it works: the catalog is built from a snapshot (the cloud's bulk export) at ``version`` and
then moves forward only by ``ChangeSet``s whose ``base_version`` equals the catalog's version.
A stale, duplicate or out-of-order change set raises ``CatalogVersionConflict`` and leaves the
catalog untouched, so the caller fetches a fresh snapshot instead of silently drifting.
Items are ``__slots__`` dataclasses and the indexes are plain dicts, which keeps 100,000 items
in tens of megabytes and a lookup at a dict probe. Name search bisects a sorted list of
case-folded names for prefixes, then scans for substrings until ``limit`` hits; it serves the
kiosk's search box, not the scan path.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from edge.checkout.barcodes import (
    EmbeddedPrice,
    EmbeddedWeight,
    Gtin,
    ParsedBarcode,
    Plu,
    to_gtin14,
)
from edge.checkout.errors import CatalogVersionConflict, UnknownItem


def _gtin_key(code: str) -> str:
    """GTINs index as GTIN-14; in-store keys (prefix 02/20–29 + item reference) as given."""
    return to_gtin14(code) if len(code) in (8, 12, 13, 14) else code


class SoldBy(enum.Enum):
    """Whether the price is per piece or per kilogram."""

    PIECE = "piece"
    WEIGHT = "weight"


@dataclass(frozen=True, slots=True)
class Item:
    """One sellable item as the catalog snapshot describes it; ``price_minor`` is per unit/kg."""

    id: str
    name: str
    price_minor: int
    tax_class: str
    department: str
    gtins: tuple[str, ...] = ()
    plu: str | None = None
    sku: str | None = None
    sold_by: SoldBy = SoldBy.PIECE
    active: bool = True
    version: int = 0


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Upserts and deletes that move the catalog from ``base_version`` to ``version``."""

    base_version: int
    version: int
    upserts: tuple[Item, ...] = ()
    deletes: tuple[str, ...] = ()


@dataclass(slots=True)
class Catalog:
    """In-memory index over items; build with ``Catalog.from_snapshot``."""

    version: int = 0
    _by_id: dict[str, Item] = field(default_factory=dict, init=False, repr=False)
    _by_gtin: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _by_plu: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _by_sku: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _sorted_names: list[tuple[str, str]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_snapshot(cls, items: Iterable[Item], *, version: int) -> Catalog:
        """Build the indexes from a full snapshot taken at ``version``."""
        catalog = cls(version=version)
        for item in items:
            catalog._put(item)
        catalog.search("\0")  # builds the sorted name index now rather than on the first search
        return catalog

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._by_id.values())

    def _put(self, item: Item) -> None:
        self._drop(item.id)
        self._by_id[item.id] = item
        for gtin in item.gtins:
            self._by_gtin[_gtin_key(gtin)] = item.id
        if item.plu is not None:
            self._by_plu[item.plu] = item.id
        if item.sku is not None:
            self._by_sku[item.sku] = item.id
        self._sorted_names = None

    def _drop(self, item_id: str) -> None:
        old = self._by_id.pop(item_id, None)
        if old is None:
            return
        self._sorted_names = None
        keyed: list[tuple[dict[str, str], str | None]]
        keyed = [(self._by_gtin, _gtin_key(g)) for g in old.gtins]
        keyed += [(self._by_plu, old.plu), (self._by_sku, old.sku)]
        for index, key in keyed:
            if key is not None and index.get(key) == item_id:
                del index[key]

    def apply(self, change: ChangeSet) -> None:
        """Apply a change set whose base is this catalog's version; otherwise refuse it."""
        if change.base_version != self.version or change.version <= change.base_version:
            raise CatalogVersionConflict(
                catalog_version=self.version,
                base_version=change.base_version,
                version=change.version,
            )
        for item_id in change.deletes:
            self._drop(item_id)
        for item in change.upserts:
            self._put(item)
        self.version = change.version

    def _active(self, item_id: str | None, key: str, kind: str) -> Item:
        item = self._by_id.get(item_id) if item_id is not None else None
        if item is None or not item.active:
            raise UnknownItem(key=key, kind=kind)
        return item

    def by_id(self, item_id: str) -> Item:
        """The active item with this id."""
        return self._active(item_id, item_id, "id")

    def by_gtin(self, gtin14: str) -> Item:
        """The active item for a GTIN-14 (``barcodes.Gtin.gtin14``) or an in-store item key."""
        return self._active(self._by_gtin.get(gtin14), gtin14, "GTIN")

    def by_plu(self, plu: str) -> Item:
        """The active item for a PLU code."""
        return self._active(self._by_plu.get(plu), plu, "PLU")

    def by_sku(self, sku: str) -> Item:
        """The active item for a SKU."""
        return self._active(self._by_sku.get(sku), sku, "SKU")

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
        if self._sorted_names is None:  # rebuilt lazily: change sets are rare, searches many
            self._sorted_names = sorted(
                (item.name.casefold(), item.id) for item in self._by_id.values() if item.active
            )
        names = self._sorted_names
        hits: list[str] = []
        i = bisect.bisect_left(names, (needle, ""))
        while i < len(names) and len(hits) < limit and names[i][0].startswith(needle):
            hits.append(names[i][1])
            i += 1
        if len(hits) < limit:
            seen = set(hits)
            for name, item_id in names:
                if needle in name and item_id not in seen:
                    hits.append(item_id)
                    if len(hits) >= limit:
                        break
        return [self._by_id[item_id] for item_id in hits]
