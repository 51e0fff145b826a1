import bisect
import dataclasses

import pytest

from edge.checkout.barcodes import gs1_check_digit, parse_barcode
from edge.checkout.catalog import Catalog, ChangeSet, Item
from edge.checkout.errors import CatalogVersionConflict, UnknownItem

from .builders import make_item


def gtin13(n: int) -> str:
    body = f"76{n:010d}"
    return body + str(gs1_check_digit(body))


def catalog_item(n: int) -> Item:
    return make_item(n, gtins=(gtin13(n),), plu=f"{n:05d}" if n < 1000 else None)


@pytest.fixture(scope="module")
def big_catalog() -> Catalog:
    return Catalog.from_snapshot((catalog_item(n) for n in range(100_000)), version=7)


def test_hundred_thousand_items_look_up_by_every_key(big_catalog: Catalog) -> None:
    assert len(big_catalog) == 100_000
    for n in (0, 1, 999, 54_321, 99_999):
        scanned = parse_barcode(gtin13(n))
        assert big_catalog.by_gtin(scanned.gtin14).id == f"item-{n}"  # type: ignore[union-attr]
        assert big_catalog.by_sku(f"SKU{n:07d}").id == f"item-{n}"
        assert big_catalog.by_id(f"item-{n}").name == f"Item {n}"
    assert big_catalog.by_plu("00042").id == "item-42"


def test_search_is_bounded_and_prefix_first(big_catalog: Catalog) -> None:
    hits = big_catalog.search("item 9999", limit=5)
    assert len(hits) == 5
    assert all(h.name.lower().startswith("item 9999") for h in hits)
    assert big_catalog.search("  ") == []
    assert len(big_catalog.search("tem 12", limit=3)) == 3


def test_unknown_key_is_typed() -> None:
    catalog = Catalog.from_snapshot([catalog_item(1)], version=1)
    with pytest.raises(UnknownItem) as info:
        catalog.by_gtin("00000000000000")
    assert info.value.kind == "GTIN"


def test_inactive_items_are_not_sold() -> None:
    catalog = Catalog.from_snapshot([dataclasses.replace(catalog_item(1), active=False)], version=1)
    with pytest.raises(UnknownItem):
        catalog.by_sku("SKU0000001")
    assert catalog.search("Item") == []


def test_change_set_upserts_and_deletes() -> None:
    catalog = Catalog.from_snapshot([catalog_item(1), catalog_item(2)], version=1)
    renamed = dataclasses.replace(catalog_item(1), gtins=(gtin13(500),), version=2)
    catalog.apply(ChangeSet(base_version=1, version=2, upserts=(renamed,), deletes=("item-2",)))
    assert catalog.version == 2
    assert catalog.by_gtin(f"0{gtin13(500)}").id == "item-1"
    with pytest.raises(UnknownItem):
        catalog.by_gtin(f"0{gtin13(1)}")  # the old GTIN went with the upsert
    with pytest.raises(UnknownItem):
        catalog.by_id("item-2")


@pytest.mark.parametrize(
    ("base", "version"),
    [
        pytest.param(1, 2, id="duplicate"),
        pytest.param(0, 1, id="stale"),
        pytest.param(3, 4, id="gap"),
        pytest.param(2, 2, id="not-forward"),
    ],
)
def test_out_of_order_change_sets_are_refused(base: int, version: int) -> None:
    catalog = Catalog.from_snapshot([catalog_item(1)], version=1)
    catalog.apply(ChangeSet(base_version=1, version=2))
    with pytest.raises(CatalogVersionConflict) as info:
        catalog.apply(ChangeSet(base_version=base, version=version, deletes=("item-1",)))
    assert info.value.catalog_version == 2
    assert catalog.version == 2
    assert catalog.by_id("item-1")  # untouched


def _with_check(body12: str) -> str:
    return body12 + str(gs1_check_digit(body12))


@pytest.mark.parametrize(
    ("code", "item_id"),
    [
        pytest.param(gtin13(5), "item-5", id="gtin"),
        pytest.param(_with_check("2300042" + "01234"), "cheese", id="embedded-weight"),
        pytest.param(_with_check("0255555" + "01990"), "cake", id="embedded-price"),
        pytest.param("4011", "bananas", id="plu"),
    ],
)
def test_lookup_of_every_kind_of_scan(code: str, item_id: str) -> None:
    catalog = Catalog.from_snapshot(
        [
            catalog_item(5),
            make_item(0, id="cheese", gtins=("2300042",)),
            make_item(0, id="cake", gtins=("0255555",)),
            make_item(0, id="bananas", plu="4011", sku=None),
        ],
        version=1,
    )
    assert catalog.lookup(parse_barcode(code)).id == item_id


@pytest.mark.parametrize(
    ("given", "scanned_gtin14"),
    [
        pytest.param(gtin13(5), f"0{gtin13(5)}", id="gtin-13"),
        pytest.param(f"0{gtin13(5)}", f"0{gtin13(5)}", id="gtin-14"),
        pytest.param("036000291452", "00036000291452", id="upc-a"),
        pytest.param("96385074", "00000096385074", id="ean-8"),
        pytest.param("04252614", "00042100005264", id="upc-e"),
        pytest.param("0001234567895", "00001234567895", id="gtin-13-with-leading-zeros"),
    ],
)
def test_every_form_of_a_gtin_is_found_by_its_gtin14(given: str, scanned_gtin14: str) -> None:
    catalog = Catalog.from_snapshot([make_item(5, gtins=(given,))], version=1)
    assert catalog.by_gtin(scanned_gtin14).id == "item-5"


def test_a_gtin_lookup_wants_the_gtin14() -> None:
    catalog = Catalog.from_snapshot([make_item(5, gtins=(gtin13(5),))], version=1)
    with pytest.raises(UnknownItem):
        catalog.by_gtin(gtin13(5))  # as before: the index answers GTIN-14s and in-store keys


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(gtin13(9), f"0{gtin13(9)}", id="13-then-14"),
        pytest.param(f"0{gtin13(9)}", gtin13(9), id="14-then-13"),
    ],
)
def test_the_item_put_last_takes_a_gtin_whatever_its_form(first: str, second: str) -> None:
    catalog = Catalog.from_snapshot([make_item(1, gtins=(first,))], version=1)
    catalog.apply(ChangeSet(base_version=1, version=2, upserts=(make_item(2, gtins=(second,)),)))
    assert catalog.by_gtin(f"0{gtin13(9)}").id == "item-2"
    catalog.apply(ChangeSet(base_version=2, version=3, deletes=("item-2",)))
    with pytest.raises(UnknownItem):  # as before: the GTIN went with the item that held it last
        catalog.by_gtin(f"0{gtin13(9)}")


def _search_as_sorted_tuples(items: list[Item], text: str, limit: int) -> list[str]:
    """The search as it was: bisect a sorted list of (case-folded name, id), then scan it."""
    needle = text.casefold().strip()
    if not needle or limit <= 0:
        return []
    names = sorted((i.name.casefold(), i.id) for i in items if i.active)
    start = bisect.bisect_left(names, (needle, ""))
    hits = [i for n, i in names[start:] if n.startswith(needle)][:limit]
    hits += [i for n, i in names if needle in n and i not in hits][: limit - len(hits)]
    return hits


NAMED = [
    make_item(n, name=name, active=n != 6)
    for n, name in enumerate(
        [
            "Straße Brot",
            "STRASSE brot",
            "Apfel Golden",
            "Apfelmus",
            "Bio Apfel",
            "apfel",
            "Apfel inactive",
            "Grapefruit",
            "Zapfen",
            "Apfel Golden",
        ]
    )
]


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param("apfel", 20, id="prefix-then-substring"),
        pytest.param("APFEL", 3, id="limit-within-prefix"),
        pytest.param("apfel", 5, id="limit-within-substring"),
        pytest.param("strasse", 20, id="casefolded"),
        pytest.param("fen", 20, id="substring-only"),
        pytest.param("e", 20, id="everywhere"),
        pytest.param("golden", 0, id="no-limit"),
        pytest.param("zz", 20, id="nothing"),
        pytest.param("l\0b", 20, id="separator"),
        pytest.param("t b", 20, id="across-words"),
    ],
)
def test_search_finds_what_the_sorted_tuple_search_found(text: str, limit: int) -> None:
    catalog = Catalog.from_snapshot(NAMED, version=1)
    found = [item.id for item in catalog.search(text, limit=limit)]
    assert found == _search_as_sorted_tuples(NAMED, text, limit)


def test_search_follows_change_sets() -> None:
    catalog = Catalog.from_snapshot(NAMED, version=1)
    renamed = dataclasses.replace(NAMED[0], name="Kirschen")
    catalog.apply(ChangeSet(base_version=1, version=2, upserts=(renamed,), deletes=("item-3",)))
    assert [i.id for i in catalog.search("kirsch")] == ["item-0"]
    assert "item-3" not in [i.id for i in catalog.search("apfel")]
