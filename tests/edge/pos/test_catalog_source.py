"""Snapshot files are read one item at a time and give the catalog the whole document gave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.checkout.catalog import Catalog
from edge.pos import catalog_source
from edge.pos.catalog_source import (
    CatalogFormatError,
    catalog_from_json,
    catalog_from_snapshot,
    item_to_json,
    load_snapshot_file,
    parse_json,
)
from edge.pos.store_config import DEMO_CATALOG

ITEMS = [item_to_json(item) for item in load_snapshot_file(DEMO_CATALOG)]
ITEM = ITEMS[0]


def whole_document(text: str) -> Catalog:
    """The catalog as it was loaded before: ``json.loads`` the document, then build."""
    return catalog_from_snapshot(parse_json(text))


def no_whole_document(text: str | bytes) -> Any:
    raise AssertionError("a plain snapshot is streamed, never parsed as one document")


def assert_same_catalog(streamed: Catalog, whole: Catalog) -> None:
    assert streamed.version == whole.version
    assert list(streamed) == list(whole)
    for item in whole:
        assert streamed.by_id(item.id) == item
        assert [i.id for i in streamed.search(item.name)] == [i.id for i in whole.search(item.name)]
    assert [i.id for i in streamed.search("e", limit=50)] == [
        i.id for i in whole.search("e", limit=50)
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(json.dumps({"version": 3, "items": ITEMS}), id="compact"),
        pytest.param(json.dumps({"version": 3, "items": ITEMS}, indent=2), id="indented"),
        pytest.param(json.dumps({"items": ITEMS, "version": 3}), id="items-first"),
        pytest.param(
            json.dumps({"exported_at": {"by": ["x"]}, "version": "4", "items": ITEMS}),
            id="other-keys-and-version-as-text",
        ),
        pytest.param(json.dumps({"version": 1, "items": []}), id="empty"),
        pytest.param(' \n{ "version" : 2 , "items" : [ \n ] } \n', id="spaces-everywhere"),
        pytest.param(
            '{"version": 1, "items": [], "items": ' + json.dumps(ITEMS[:3]) + "}",
            id="duplicate-key-last-wins",
        ),
        pytest.param(
            json.dumps({"version": 5, "items": [*ITEMS, {**ITEM, "price_minor": 999}]}),
            id="duplicate-id-last-wins",
        ),
    ],
)
def test_a_streamed_load_gives_the_catalog_the_whole_document_gave(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(text)
    whole = whole_document(text)
    monkeypatch.setattr(catalog_source, "parse_json", no_whole_document)
    assert_same_catalog(load_snapshot_file(path), whole)
    assert_same_catalog(catalog_from_json(text.encode()), whole)


def test_the_demo_catalog_loads_as_before() -> None:
    assert_same_catalog(load_snapshot_file(DEMO_CATALOG), whole_document(DEMO_CATALOG.read_text()))


def _snapshot(*items: object, version: object = 1) -> str:
    return json.dumps({"version": version, "items": [ITEM, *items]})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(
            _snapshot({**ITEM, "price_minor": 1.75}), CatalogFormatError, id="float-price"
        ),
        pytest.param(
            _snapshot({**ITEM, "extra": {"weight": 0.5}}), CatalogFormatError, id="float-elsewhere"
        ),
        pytest.param('{"version": 1.0, "items": []}', CatalogFormatError, id="float-version"),
        pytest.param(
            _snapshot({**ITEM, "price_minor": "175"}), CatalogFormatError, id="price-as-text"
        ),
        pytest.param(_snapshot({**ITEM, "price_minor": True}), CatalogFormatError, id="price-bool"),
        pytest.param(
            _snapshot({k: v for k, v in ITEM.items() if k != "name"}),
            CatalogFormatError,
            id="no-name",
        ),
        pytest.param(_snapshot({**ITEM, "sold_by": "litre"}), CatalogFormatError, id="sold-by"),
        pytest.param(_snapshot("an item"), CatalogFormatError, id="item-not-an-object"),
        pytest.param(_snapshot(version="one"), CatalogFormatError, id="version-not-a-number"),
        pytest.param('{"items": []}', CatalogFormatError, id="no-version"),
        pytest.param('{"version": 1}', CatalogFormatError, id="no-items"),
        pytest.param('{"version": 1, "items": {"a": 1}}', CatalogFormatError, id="items-object"),
        pytest.param("[]", CatalogFormatError, id="not-an-object"),
        pytest.param(_snapshot()[:-3], json.JSONDecodeError, id="truncated"),
        pytest.param(_snapshot() + "x", json.JSONDecodeError, id="trailing-data"),
        pytest.param(
            _snapshot(ITEMS[1]).replace("}, {", "} {", 1), json.JSONDecodeError, id="no-comma"
        ),
        pytest.param('{"version": 1, "items": [,]}', json.JSONDecodeError, id="empty-slot"),
    ],
)
def test_the_loader_refuses_what_it_refused_before(
    text: str, error: type[Exception], tmp_path: Path
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(text)
    with pytest.raises(error):
        whole_document(text)
    with pytest.raises(error):
        load_snapshot_file(path)
