"""Catalog snapshots and change sets as JSON: from a file, or from the control plane's API.

How it works: the wire form of an item is a flat JSON object (money as integer minor units, no
floats); a snapshot is ``{"version": V, "items": [...]}`` and a change set
``{"base_version": V, "version": W, "upserts": [...], "deletes": [...]}`` — the same shapes the
control plane serves at ``/api/catalog/snapshot`` and ``/api/catalog/changes``. Parsing refuses
floats, so a price can never pass through binary floating point on its way to the till.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.checkout.catalog import Catalog, ChangeSet, Item, SoldBy


class CatalogFormatError(ValueError):
    """A snapshot or change set that does not have the documented shape."""


def _refuse_float(text: str) -> object:
    raise CatalogFormatError(f"money and quantities are never floats: {text}")


def item_from_json(raw: Mapping[str, Any]) -> Item:
    """One item from its wire form."""
    try:
        price = raw["price_minor"]
        if type(price) is not int:
            raise CatalogFormatError(f"item {raw.get('id')}: price_minor must be an integer")
        return Item(
            id=str(raw["id"]),
            name=str(raw["name"]),
            price_minor=price,
            tax_class=str(raw["tax_class"]),
            department=str(raw.get("department", "")),
            gtins=tuple(str(g) for g in raw.get("gtins", ())),
            plu=None if raw.get("plu") is None else str(raw["plu"]),
            sku=None if raw.get("sku") is None else str(raw["sku"]),
            sold_by=SoldBy(raw.get("sold_by", "piece")),
            active=bool(raw.get("active", True)),
            version=int(raw.get("version", 0)),
        )
    except (KeyError, ValueError, TypeError) as err:
        if isinstance(err, CatalogFormatError):
            raise
        raise CatalogFormatError(f"bad item {raw!r}: {err}") from err


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


def load_snapshot_file(path: Path | str) -> Catalog:
    """The catalog in a snapshot file (the demo's, or one left by the last sync)."""
    return catalog_from_snapshot(parse_json(Path(path).read_bytes()))
