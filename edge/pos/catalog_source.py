"""Catalog snapshots and change sets as JSON: from a file, or from the control plane's API.

How it works: the wire form of an item is a flat JSON object (money as integer minor units, no
floats); a snapshot is ``{"version": V, "items": [...]}`` and a change set
``{"base_version": V, "version": W, "upserts": [...], "deletes": [...]}`` — the same shapes the
control plane serves at ``/api/catalog/snapshot`` and ``/api/catalog/changes``. Parsing refuses
floats, so a price can never pass through binary floating point on its way to the till.

A snapshot is read one item at a time: the top-level object is walked by hand and each item is
decoded by the JSON scanner at its offset, turned into an ``Item`` and dropped, so the 100,000
parsed dicts of a large catalog never exist at once (they cost more than the catalog itself and
leave the heap fragmented), and the document's text goes before the indexes are built. Anything
but the plain shape goes to ``json.loads`` and the whole-document path, which says what is wrong
as it always did. Prices and versions share int objects, tax classes and departments are
interned, collections wait until the items are built, and ``load_snapshot_file`` hands what the
load used back to the OS (``malloc_trim`` on glibc).
"""

from __future__ import annotations

import ctypes
import gc
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge.checkout.catalog import Catalog, ChangeSet, Item, SoldBy


class CatalogFormatError(ValueError):
    """A snapshot or change set that does not have the documented shape."""


def _refuse_float(text: str) -> object:
    raise CatalogFormatError(f"money and quantities are never floats: {text}")


_DECODER = json.JSONDecoder(parse_float=_refuse_float)
# the C scanner that raw_decode wraps (typeshed does not list the attribute)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


def item_from_json(raw: Mapping[str, Any], *, shared: dict[int, int] | None = None) -> Item:
    """One item from its wire form; ``shared`` keeps one int object per price or version."""
    try:
        price = raw["price_minor"]
        if type(price) is not int:
            raise CatalogFormatError(f"item {raw.get('id')}: price_minor must be an integer")
        return Item(
            id=str(raw["id"]),
            name=str(raw["name"]),
            price_minor=_shared(price, shared),
            tax_class=sys.intern(str(raw["tax_class"])),
            department=sys.intern(str(raw.get("department", ""))),
            gtins=tuple(str(g) for g in raw.get("gtins", ())),
            plu=None if raw.get("plu") is None else str(raw["plu"]),
            sku=None if raw.get("sku") is None else str(raw["sku"]),
            sold_by=SoldBy(raw.get("sold_by", "piece")),
            active=bool(raw.get("active", True)),
            version=_shared(int(raw.get("version", 0)), shared),
        )
    except (KeyError, ValueError, TypeError) as err:
        if isinstance(err, CatalogFormatError):
            raise
        raise CatalogFormatError(f"bad item {raw!r}: {err}") from err


def _shared(number: int, shared: dict[int, int] | None) -> int:
    return number if shared is None else shared.setdefault(number, number)


def item_to_json(item: Item) -> dict[str, Any]:
    """An item's wire form."""
    return {
        "id": item.id,
        "name": item.name,
        "price_minor": item.price_minor,
        "tax_class": item.tax_class,
        "department": item.department,
        "gtins": list(item.gtins),
        "plu": item.plu,
        "sku": item.sku,
        "sold_by": item.sold_by.value,
        "active": item.active,
        "version": item.version,
    }


def catalog_from_snapshot(raw: Mapping[str, Any]) -> Catalog:
    """Build a catalog from a parsed snapshot document."""
    try:
        version, items = int(raw["version"]), raw["items"]
    except (KeyError, TypeError, ValueError) as err:
        raise CatalogFormatError(f"a snapshot needs version and items: {err}") from err
    return Catalog.from_snapshot((item_from_json(i) for i in items), version=version)


def change_set_from_json(raw: Mapping[str, Any]) -> ChangeSet:
    """A change set from its wire form."""
    try:
        return ChangeSet(
            base_version=int(raw["base_version"]),
            version=int(raw["version"]),
            upserts=tuple(item_from_json(i) for i in raw.get("upserts", ())),
            deletes=tuple(str(d) for d in raw.get("deletes", ())),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, CatalogFormatError):
            raise
        raise CatalogFormatError(f"bad change set: {err}") from err


def parse_json(text: str | bytes) -> Any:
    """JSON with floats refused."""
    return json.loads(text, parse_float=_refuse_float)


class _NotPlainError(Exception):
    """The document is not a plain snapshot object; the whole-document path reports why."""


_MISSING: Any = object()


def _snapshot_parts(text: str) -> tuple[Any, list[Item]]:
    """``version`` and the items of a snapshot, decoding and building one item at a time."""
    version, items = _MISSING, None
    pos = _expect(text, 0, "{")
    while text.startswith('"', pos):
        key, pos = _decode(text, pos)
        pos = _expect(text, pos, ":")
        if key == "items":
            items, pos = _stream_items(text, _expect(text, pos, "["))
        elif key == "version":
            version, pos = _decode(text, pos)
        else:
            _, pos = _decode(text, pos)
        pos = _skip_space(text, pos)
        if not text.startswith(",", pos):
            break
        pos = _skip_space(text, pos + 1)
    if version is _MISSING or items is None or _expect(text, pos, "}") != len(text):
        raise _NotPlainError
    return version, items


def _stream_items(text: str, pos: int) -> tuple[list[Item], int]:
    """The items of the array whose first item starts at ``pos``, and the position after it."""
    items: list[Item] = []
    shared: dict[int, int] = {}  # prices repeat: 100,000 items share a few thousand int objects
    if text.startswith("]", pos):
        return items, pos + 1
    while True:
        raw, pos = _decode(text, pos)
        items.append(item_from_json(raw, shared=shared))
        if not text.startswith(",", pos):  # the compact form goes straight on to the next item
            pos = _skip_space(text, pos)
            if text.startswith("]", pos):
                return items, pos + 1
            if not text.startswith(",", pos):
                raise _NotPlainError
        pos = _skip_space(text, pos + 1)


def _decode(text: str, pos: int) -> tuple[Any, int]:
    """The JSON value at ``pos`` and the position after it."""
    try:
        return _SCAN(text, pos)
    except StopIteration as err:  # no JSON value starts here
        raise _NotPlainError from err


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return pos if match is None else match.end()


def _expect(text: str, pos: int, token: str) -> int:
    """The position after ``token`` and the whitespace around it."""
    pos = _skip_space(text, pos)
    if not text.startswith(token, pos):
        raise _NotPlainError
    return _skip_space(text, pos + 1)


def catalog_from_json(text: str | bytes, *, index_names: bool = True) -> Catalog:
    """Build a catalog from a snapshot document's text, one item at a time."""
    return _streamed_catalog(
        lambda: text if isinstance(text, str) else _decode_text(text), index_names=index_names
    )


def _streamed_catalog(read: Callable[[], str], *, index_names: bool = True) -> Catalog:
    """The catalog in the document ``read`` returns."""
    text = read()  # read here, so that, unless the caller keeps it, ``del text`` below frees it
    collecting = gc.isenabled()
    gc.disable()  # 100,000 new items would trigger collections that walk them again and again
    try:
        try:
            version, items = _snapshot_parts(text)
        except (_NotPlainError, json.JSONDecodeError):
            return catalog_from_snapshot(parse_json(text))  # raises what is wrong, as always
        del text  # before the indexes: the peak is the catalog's, not the catalog's plus the text
        try:
            version = int(version)
        except (TypeError, ValueError) as err:
            raise CatalogFormatError(f"a snapshot needs version and items: {err}") from err
        return Catalog.from_snapshot(items, version=version, index_names=index_names)
    finally:
        if collecting:
            gc.enable()


def _decode_text(data: bytes) -> str:
    return data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads does


def _trim_heap() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, which hands freed heap pages back to the OS; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and other libcs: no such library or function
        return None


def load_snapshot_file(path: Path | str) -> Catalog:
    """The catalog in a snapshot file (the demo's, or one left by the last sync).

    Loading is the moment the process's memory is shaped for the day: afterwards a collection
    and ``malloc_trim`` return what decoding used, so the appliance's RSS is the catalog's.
    """
    catalog = _streamed_catalog(lambda: _decode_text(Path(path).read_bytes()))
    gc.collect()
    trim = _trim_heap()
    if trim is not None:
        trim(0)
    return catalog
