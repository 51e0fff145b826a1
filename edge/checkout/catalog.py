"""The register's in-memory catalog: O(1) lookup by GTIN, PLU, SKU and in-store key.

How it works: the catalog is built from a snapshot (the cloud's bulk export) at ``version`` and
then moves forward only by ``ChangeSet``s whose ``base_version`` equals the catalog's version.
A stale, duplicate or out-of-order change set raises ``CatalogVersionConflict`` and leaves the
catalog untouched, so the caller fetches a fresh snapshot instead of silently drifting.
Items are ``__slots__`` dataclasses and the indexes are plain dicts whose keys are the items'
own strings (a GTIN indexes as given, and a GTIN-14 lookup also tries the shorter codes its
leading zeros pad), which keeps 100,000 items in about 60 MB and a lookup at a few dict probes.
Name search keeps the case-folded names, sorted, in one string: it bisects them for prefixes,
then ``str.find``s substrings until ``limit`` hits; it serves the kiosk's search box, not the
scan path.
"""

from __future__ import annotations

import array
import bisect
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from edge.checkout.barcodes import (
    EmbeddedPrice,
    EmbeddedWeight,
    Gtin,
    ParsedBarcode,
    Plu,
    to_gtin14,
)
from edge.checkout.errors import CatalogVersionConflict, UnknownItem

GTIN_LENGTHS = (8, 12, 13, 14)
# the zeros that pad a GTIN-13, a UPC-A and an EAN-8 to a GTIN-14, and where the code then starts
_PADDINGS = (("0", 1), ("00", 2), ("000000", 6))


def gtin_key(code: str) -> str:
    """The key a code indexes under: a GTIN as given when zero-padding it gives its GTIN-14.

    Keeping the item's own ``7610200000019`` rather than a 14-digit copy saves a string per
    GTIN; a code whose GTIN-14 is not its padding (UPC-E) indexes as its GTIN-14, and in-store
    keys (prefix 02/20–29 + item reference) as given.
    """
    if len(code) not in GTIN_LENGTHS:
        return code
    gtin14 = to_gtin14(code)
    return code if gtin14 == code.zfill(14) else gtin14


def gtin_forms(gtin14: str) -> Iterator[str]:
    """The keys a GTIN-14 may be indexed under: itself and the shorter codes it pads.

    A shorter GTIN is not a GTIN-14 and finds nothing, as when every GTIN was indexed as one;
    an in-store key is its own only form.
    """
    if len(gtin14) in GTIN_LENGTHS[:-1]:
        return
    yield gtin14
    if len(gtin14) == 14:
        for zeros, start in _PADDINGS:
            if not gtin14.startswith(zeros):
                return
            yield gtin14[start:]


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
    _names: _NameIndex | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_snapshot(
        cls, items: Iterable[Item], *, version: int, index_names: bool = True
    ) -> Catalog:
        """Build the indexes from a full snapshot taken at ``version``.

        ``index_names=False`` leaves the name index to the first search (a catalog built only
        to be written elsewhere, :mod:`edge.pos.catalog_store`, never searches).
        """
        catalog = cls(version=version)
        for item in items:
            catalog._put(item)
        if index_names:
            catalog._name_index()  # built now rather than on the first search
        return catalog

    def keys(self) -> Iterator[tuple[str, str, str]]:
        """Every lookup key as ``(kind, key, item id)``: kind ``gtin``, ``plu`` or ``sku``."""
        for kind, index in (("gtin", self._by_gtin), ("plu", self._by_plu), ("sku", self._by_sku)):
            for key, item_id in index.items():
                yield kind, key, item_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._by_id.values())

    def _put(self, item: Item) -> None:
        self._drop(item.id)
        self._by_id[item.id] = item
        for gtin in item.gtins:
            key = gtin_key(gtin)
            if len(key) in GTIN_LENGTHS:  # one key per GTIN-14: the last item put takes it
                for form in gtin_forms(key.zfill(14)):
                    self._by_gtin.pop(form, None)
            self._by_gtin[key] = item.id
        if item.plu is not None:
            self._by_plu[item.plu] = item.id
        if item.sku is not None:
            self._by_sku[item.sku] = item.id
        self._names = None

    def _drop(self, item_id: str) -> None:
        old = self._by_id.pop(item_id, None)
        if old is None:
            return
        self._names = None
        keyed: list[tuple[dict[str, str], str | None]]
        keyed = [(self._by_gtin, gtin_key(g)) for g in old.gtins]
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
        return self._active(self._gtin_owner(gtin14), gtin14, "GTIN")

    def _gtin_owner(self, gtin14: str) -> str | None:
        for key in gtin_forms(gtin14):
            item_id = self._by_gtin.get(key)
            if item_id is not None:
                return item_id
        return None

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
        names = self._name_index()
        hits = names.starting_with(needle, limit=limit)
        if len(hits) < limit:
            hits += names.containing(needle, limit=limit - len(hits), skip=set(hits))
        return [self._by_id[item_id] for item_id in hits]

    def _name_index(self) -> _NameIndex:
        if self._names is None:  # rebuilt lazily: change sets are rare, searches many
            self._names = _NameIndex(item for item in self._by_id.values() if item.active)
        return self._names


class CatalogView(Protocol):
    """What the till asks of a catalog: :class:`Catalog` in memory, or the register's stored one
    (:class:`edge.pos.catalog_store.StoredCatalog`), read from SQLite by index on demand."""

    @property
    def version(self) -> int:
        """The snapshot or change set version this catalog is at."""
        ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Item]: ...

    def by_id(self, item_id: str) -> Item:
        """The active item with this id, else :class:`UnknownItem`."""
        ...

    def lookup(self, scanned: ParsedBarcode) -> Item:
        """The active item for a parsed scan, else :class:`UnknownItem`."""
        ...

    def search(self, text: str, *, limit: int = 20) -> list[Item]:
        """Active items whose name starts with ``text`` first, then those containing it."""
        ...

    def apply(self, change: ChangeSet) -> None:
        """A change set whose base is this catalog's version; else CatalogVersionConflict."""
        ...


class _NameIndex:
    """Case-folded names, sorted, in one string: ``SEP`` after each, ``starts[i]`` where i begins.

    One string and an array of offsets instead of a (name, id) tuple per item keeps the index at
    a few bytes per item; ``str.find`` scans it for substrings at C speed.
    """

    SEP = "\0"

    def __init__(self, items: Iterable[Item]) -> None:
        rows = sorted((item.name.casefold().replace(self.SEP, " "), item.id) for item in items)
        self.ids = [item_id for _, item_id in rows]
        self.starts = array.array("L", [0])
        for name, _ in rows:
            self.starts.append(self.starts[-1] + len(name) + 1)
        self.text = self.SEP.join(name for name, _ in rows) + self.SEP

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row: int) -> str:
        return self.text[self.starts[row] : self.starts[row + 1] - 1]

    def starting_with(self, needle: str, *, limit: int) -> list[str]:
        """Ids of up to ``limit`` names that start with ``needle``, in name order."""
        hits: list[str] = []
        row = bisect.bisect_left(self, needle)
        while row < len(self.ids) and len(hits) < limit and self[row].startswith(needle):
            hits.append(self.ids[row])
            row += 1
        return hits

    def containing(self, needle: str, *, limit: int, skip: set[str]) -> list[str]:
        """Ids of up to ``limit`` names that contain ``needle``, in name order, minus ``skip``."""
        hits: list[str] = []
        if self.SEP in needle:
            return hits
        at = self.text.find(needle)
        while at >= 0 and len(hits) < limit:
            row = bisect.bisect_right(self.starts, at) - 1
            if self.ids[row] not in skip:
                hits.append(self.ids[row])
            at = self.text.find(needle, self.starts[row + 1])
        return hits
