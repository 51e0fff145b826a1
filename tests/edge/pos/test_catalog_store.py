"""The stored catalog answers as the in-memory one, after any snapshot and change sets."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.barcodes import gs1_check_digit
from edge.checkout.catalog import Catalog, ChangeSet, Item, SoldBy
from edge.checkout.errors import CatalogVersionConflict, UnknownItem
from edge.pos.catalog_source import CatalogFormatError, item_to_json
from edge.pos.catalog_store import CatalogStoreError, StoredCatalog, import_snapshot, write_catalog
from tests.edge.checkout.builders import PROPERTY, make_item


def _gtin13(n: int) -> str:
    body = f"76{n:010d}"
    return body + str(gs1_check_digit(body))


# forms that collide on one GTIN-14 (13 and 14 digits), a UPC-A, an EAN-8, a UPC-E, in-store keys
GTINS = [_gtin13(9), f"0{_gtin13(9)}", "036000291452", "96385074", "04252614", "2300042", "0255555"]
PROBES = [f"0{_gtin13(9)}", "00036000291452", "00000096385074", "00042100005264", "2300042"]
IDS = [f"item-{n}" for n in range(5)]
NAMES = ["Apfel Golden", "apfelmus", "Bio Apfel", "Straße Brot", "STRASSE brot", "Zapfen"]
NEEDLES = ["apfel", "APFEL", "strasse", "fen", "e", "t b", "zz", "l\0b"]

items = st.builds(
    Item,
    id=st.sampled_from(IDS),
    name=st.sampled_from(NAMES),
    price_minor=st.integers(0, 10_000),
    tax_class=st.sampled_from(["A", "B"]),
    department=st.just("d"),
    gtins=st.lists(st.sampled_from(GTINS), max_size=2, unique=True).map(tuple),
    plu=st.sampled_from([None, "4011", "4012"]),
    sku=st.sampled_from([None, "S1", "S2"]),
    sold_by=st.sampled_from(SoldBy),
    active=st.booleans(),
    version=st.integers(0, 5),
)
changes = st.lists(
    st.tuples(st.lists(items, max_size=3), st.lists(st.sampled_from(IDS), max_size=2)),
    max_size=4,
)


def _answers(ask: Callable[[str], Item], keys: list[str]) -> list[Item | str]:
    out: list[Item | str] = []
    for key in keys:
        try:
            out.append(ask(key))
        except UnknownItem as err:
            out.append(f"unknown {err.kind} {err.key}")
    return out


def _everything(catalog: Catalog | StoredCatalog) -> object:
    return {
        "version": catalog.version,
        "len": len(catalog),
        "items": sorted((item.id, item) for item in catalog),
        "by_id": _answers(catalog.by_id, IDS),
        "by_gtin": _answers(catalog.by_gtin, PROBES),
        "by_plu": _answers(catalog.by_plu, ["4011", "4012"]),
        "by_sku": _answers(catalog.by_sku, ["S1", "S2"]),
        "search": [[i.id for i in catalog.search(n, limit=k)] for n in NEEDLES for k in (1, 3, 20)],
    }


@PROPERTY
@given(snapshot=st.lists(items, max_size=6), steps=changes)
def test_stored_catalog_answers_as_the_one_in_memory(
    tmp_path_factory: pytest.TempPathFactory,
    snapshot: list[Item],
    steps: list[tuple[list[Item], list[str]]],
) -> None:
    path = tmp_path_factory.mktemp("store") / "catalog.db"
    memory = Catalog.from_snapshot(snapshot, version=1)
    write_catalog(path, Catalog.from_snapshot(snapshot, version=1))
    stored = StoredCatalog(path)
    try:
        assert _everything(stored) == _everything(memory)
        for number, (upserts, deletes) in enumerate(steps, start=1):
            change = ChangeSet(
                base_version=number,
                version=number + 1,
                upserts=tuple(upserts),
                deletes=tuple(deletes),
            )
            memory.apply(change)
            stored.apply(change)
            assert _everything(stored) == _everything(memory)
        stored.reopen()  # what was applied is in the file, not only in this connection
        assert _everything(stored) == _everything(memory)
    finally:
        stored.close()


def test_a_stale_change_set_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    write_catalog(path, Catalog.from_snapshot([make_item(1, gtins=(_gtin13(1),))], version=3))
    stored = StoredCatalog(path)
    stale = ChangeSet(base_version=2, version=4, deletes=("item-1",))
    with pytest.raises(CatalogVersionConflict) as info:
        stored.apply(stale)
    assert info.value.catalog_version == 3
    assert (stored.version, stored.by_id("item-1").id) == (3, "item-1")


def test_a_snapshot_document_is_stored_whole(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    items = [make_item(n, gtins=(_gtin13(n),)) for n in range(50)]
    import_snapshot(path, _document(7, items))
    stored = StoredCatalog(path)
    assert (stored.version, len(stored)) == (7, 50)
    assert stored.by_gtin(f"0{_gtin13(42)}") == items[42]
    assert not path.with_name("catalog.db.new").exists()


def test_a_snapshot_with_a_float_price_is_refused_and_the_old_catalog_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.db"
    import_snapshot(path, _document(1, [make_item(1)]))
    with pytest.raises(CatalogFormatError, match="never floats"):
        import_snapshot(path, b'{"version": 2, "items": [{"id": "x", "price_minor": 1.5}]}')
    assert StoredCatalog(path).version == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not an SQLite database\n" * 64, id="not-sqlite"),
        pytest.param(None, id="sqlite-without-catalog"),
    ],
)
def test_a_file_that_is_not_a_stored_catalog_is_named(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "catalog.db"
    if content is None:
        sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
    else:
        path.write_bytes(content)
    with pytest.raises(CatalogStoreError) as info:
        StoredCatalog(path)
    assert info.value.path == path
    assert "not a stored catalog" in str(info.value)


def test_no_stored_catalog_yet_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogStoreError, match="no catalog has been stored yet"):
        StoredCatalog(tmp_path / "catalog.db")


def _document(version: int, items: list[Item]) -> bytes:
    return json.dumps({"version": version, "items": [item_to_json(i) for i in items]}).encode()
