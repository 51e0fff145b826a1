"""Catalog import from storefleet's CSV and Shopify's product export, on SQLite and PostgreSQL:
a preview writes nothing, a file with bad rows is refused with their row numbers and nothing is
imported, a good file is one new catalog version; the CLI does the same with exit codes."""

# Shopify's header is one long line, as the export writes it:
# ruff: noqa: E501

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from control_plane.catalog import service as catalog
from control_plane.catalog.import_cli import app as cli
from control_plane.catalog.import_rows import TaxClasses, read_rows
from control_plane.catalog.import_service import ImportRefused, import_catalog
from control_plane.db.engine import make_engine
from control_plane.devices import service as registry
from control_plane.operators.errors import Forbidden
from control_plane.tenancy import TenantScope
from tests.harness.control_plane import migrated_store

pytestmark = [pytest.mark.services]
_tenants = itertools.count()

GOOD = """id,name,price,tax_class,department,gtins,sold_by
I1,Whole milk 1 l,1.75,B,Dairy,7610200000019,piece
I2,Apples,3.20,B,Produce,,weight
I3,Cable,14.90,A,Electronics,5000395000253;4006381333931,
"""
BAD = """id,name,price,tax_class,gtins
I1,Milk,1.75,B,7610200000019
I2,Cheese,1.999,B,
I3,Bread,2.10,B,7610200000018
I1,Milk again,1.80,B,
,No id,1.00,B,
I6,Eggs,abc,B,
I7,Soap,1.00,B,,extra
"""
SHOPIFY = """Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Grams,Variant Inventory Qty,Variant Price,Variant Compare At Price,Variant Taxable,Variant Barcode,Image Src,Status
tee,Organic tee,"<p>Soft.
Washes well.</p>",Acme,Shirts,cotton,TRUE,Size,S,TEE-S,200,5,19.90,,TRUE,7610200000019,https://x/1.jpg,active
tee,,,,,,,,M,TEE-M,210,3,19.90,,TRUE,,https://x/2.jpg,
tee,,,,,,,,,,,,,,,,https://x/3.jpg,
gift-card,Gift card,,Acme,Gift,,TRUE,Title,Default Title,,0,0,25.00,,FALSE,,,active
old-mug,Old mug,,Acme,Kitchen,,FALSE,Title,Default Title,MUG-1,300,0,8.50,,TRUE,,,draft
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_store(request.param, tmp_path_factory.mktemp("import")) as url:
        yield url


async def _tenant(url: str, currency: str = "EUR") -> str:
    tenant = f"imp{next(_tenants)}"
    engine = make_engine(url)
    try:
        await registry.create_tenant(engine, tenant_id=tenant, name=tenant, currency=currency)
    finally:
        await engine.dispose()
    return tenant


async def _items(url: str, tenant: str) -> dict[str, tuple[str, int, str, list[str], bool]]:
    engine = make_engine(url)
    try:
        snap = await catalog.snapshot(engine, tenant_id=tenant)
    finally:
        await engine.dispose()
    return {i.id: (i.name, i.price_minor, i.tax_class, i.gtins, i.active) for i in snap.items}


def test_a_good_file_previews_then_imports_as_one_version(database: str) -> None:
    async def check() -> None:
        tenant = await _tenant(database)
        engine = make_engine(database)
        try:
            preview = await import_catalog(
                engine, tenant_id=tenant, text=GOOD, fmt="csv", commit=False
            )
            assert (preview.rows, preview.items, preview.new, preview.refused) == (3, 3, 3, 0)
            assert not preview.imported
            assert await _items(database, tenant) == {}
            done = await import_catalog(engine, tenant_id=tenant, text=GOOD, fmt="csv", commit=True)
            assert (done.imported, done.version) == (True, 1)
            again = await import_catalog(
                engine, tenant_id=tenant, text=GOOD, fmt="csv", commit=False
            )
            assert (again.new, again.changed) == (0, 3)
        finally:
            await engine.dispose()
        assert await _items(database, tenant) == {
            "I1": ("Whole milk 1 l", 175, "B", ["7610200000019"], True),
            "I2": ("Apples", 320, "B", [], True),
            "I3": ("Cable", 1490, "A", ["5000395000253", "4006381333931"], True),
        }

    asyncio.run(check())


def test_bad_rows_are_refused_by_row_number_and_nothing_is_imported(database: str) -> None:
    async def check() -> None:
        tenant = await _tenant(database)
        engine = make_engine(database)
        try:
            preview = await import_catalog(
                engine, tenant_id=tenant, text=BAD, fmt="csv", commit=False
            )
            assert [(e.row, e.column) for e in preview.errors] == [
                (3, "price"), (4, "gtins"), (5, "id"), (6, "id"), (7, "price"), (8, ""),
            ]  # fmt: skip
            assert preview.errors[0].reason == "1.999 has more than 2 decimal places"
            assert "7610200000018 is not a GTIN" in preview.errors[1].reason
            assert preview.errors[2].reason == "item id 'I1' is on row 2 too"
            with pytest.raises(ImportRefused) as refused:
                await import_catalog(engine, tenant_id=tenant, text=BAD, fmt="csv", commit=True)
            assert refused.value.refused == 6
            assert "row 3 (price)" in str(refused.value)
        finally:
            await engine.dispose()
        assert await _items(database, tenant) == {}  # row 2 was fine: not imported either

    asyncio.run(check())


def test_shopify_export_becomes_one_item_per_variant(database: str) -> None:
    async def check() -> None:
        tenant = await _tenant(database, currency="CHF")
        engine = make_engine(database)
        try:
            done = await import_catalog(
                engine, tenant_id=tenant, text=SHOPIFY, fmt="shopify", commit=True,
                taxes=TaxClasses(taxed="A", untaxed="Z"),
            )  # fmt: skip
        finally:
            await engine.dispose()
        assert (done.rows, done.items, done.refused) == (5, 4, 0)  # the image row is no item
        assert await _items(database, tenant) == {
            "TEE-S": ("Organic tee - S", 1990, "A", ["7610200000019"], True),
            "TEE-M": ("Organic tee - M", 1990, "A", [], True),
            "gift-card-1": ("Gift card", 2500, "Z", [], True),
            "MUG-1": ("Old mug", 850, "A", [], False),  # a draft: imported inactive
        }

    asyncio.run(check())


def test_another_tenants_catalog_is_refused(database: str) -> None:
    async def check() -> None:
        tenant = await _tenant(database)
        engine = make_engine(database)
        try:
            with pytest.raises(Forbidden):
                await import_catalog(
                    engine, scope=TenantScope("someone-else"), tenant_id=tenant, text=GOOD,
                    fmt="csv", commit=True,
                )  # fmt: skip
        finally:
            await engine.dispose()
        assert await _items(database, tenant) == {}

    asyncio.run(check())


def test_the_cli_imports_with_progress_and_refuses_bad_rows(database: str, tmp_path: Path) -> None:
    tenant = asyncio.run(_tenant(database))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text(BAD)
    runner = CliRunner()
    args = ["--tenant", tenant, "--database-url", database]
    refused = runner.invoke(cli, ["import", str(bad), *args, "--preview"])
    assert refused.exit_code == 1
    assert "row 3 (price): 1.999 has more than 2 decimal places" in refused.stdout
    assert runner.invoke(cli, ["import", str(bad), *args]).exit_code == 1
    assert asyncio.run(_items(database, tenant)) == {}
    done = runner.invoke(cli, ["import", str(good), *args])
    assert done.exit_code == 0, done.stdout
    assert "imported as version 1" in done.stdout
    assert "writing items" in done.stdout  # the progress bars
    assert set(asyncio.run(_items(database, tenant))) == {"I1", "I2", "I3"}
    missing = runner.invoke(cli, ["import", str(tmp_path / "none.csv"), *args])
    assert missing.exit_code == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param("name,price\nMilk,1\n", "lacks the column(s) id, tax_class", id="columns"),
        pytest.param("", "lacks the column(s) id, name, price, tax_class", id="empty"),
        # what the OpenAPI fuzz sent: a lone CR, then text; once a 500 (csv.Error, "new-line
        # character seen in unquoted field"), now a blank line and a header with no columns
        pytest.param("\rß𬔓粡", "lacks the column(s) id, name, price, tax_class", id="lone-cr"),
        # a cell past the csv module's field limit (128 KiB) cannot be read at all
        pytest.param(
            f'id,name,price,tax_class\nI1,"{"n" * 200_000}",1,A\n',
            "not readable as CSV at line 2: field larger than field limit",
            id="huge-cell",
        ),
    ],
)
def test_a_file_that_is_no_catalog_is_refused_whole(text: str, why: str) -> None:
    from control_plane.catalog.import_rows import FileRefused

    with pytest.raises(FileRefused, match=why.replace("(", r"\(").replace(")", r"\)")):
        read_rows(text, fmt="csv", exponent=2)


def test_a_file_with_old_mac_line_ends_reads_every_row() -> None:
    """Lone CRs end lines (Excel for Mac's "CSV" once wrote them), and a CR inside a quoted cell
    is the cell's (here refused as a name's control character: a row error, not a 500)."""
    text = 'id,name,price,tax_class\rI1,Milk,1.00,A\rI2,"Milk, whole",2.00,A\rI3,"A\rB",1,A\r'
    result = read_rows(text, fmt="csv", exponent=2)
    assert [(item.id, item.name) for item in result.items] == [
        ("I1", "Milk"),
        ("I2", "Milk, whole"),
    ]
    assert [(error.row, error.column) for error in result.errors] == [(4, "name")]
