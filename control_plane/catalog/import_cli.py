"""``storefleet catalog import FILE --tenant T``: a catalog file into the control plane's store.

The same import as ``POST /api/catalog/import`` (:mod:`control_plane.catalog.import_service`),
run against the database from a shell (``STOREFLEET_CP_DATABASE_URL`` or ``--database-url``),
with a progress bar for reading and one for writing, since 100,000 rows take seconds. Exit
codes, for scripts:

* 0 — imported (or, with ``--preview``, every row can be imported);
* 1 — rows are wrong: each is printed with its row number and reason, nothing was imported;
* 2 — the import could not run (no such file, not UTF-8, not the format, no such tenant, no
  store at the URL).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:  # imported by the command, so --help stays fast
    from control_plane.catalog.import_service import ImportReport

app = typer.Typer(help="The tenant's catalog: import a CSV or a Shopify product export.")


@app.callback()
def catalog() -> None:
    """The tenant's catalog (a group, so ``import`` is named even while it is the only command)."""


EXIT_ROWS_REFUSED = 1
EXIT_CANNOT_IMPORT = 2


def _cannot(message: str) -> NoReturn:
    sys.stderr.write(f"storefleet catalog import: {message}\n")
    raise typer.Exit(code=EXIT_CANNOT_IMPORT)


def _database_url(given: str | None) -> str:
    if given:
        return given
    from pydantic import ValidationError

    from control_plane.settings import ControlPlaneSettings

    try:
        return ControlPlaneSettings().database_url
    except ValidationError as err:
        _cannot(str(err.errors()[0]["msg"]))


async def _run(
    url: str, *, tenant: str, text: str, fmt: str, preview: bool, taxed: str, untaxed: str
) -> ImportReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from sqlalchemy.exc import SQLAlchemyError

    from control_plane.catalog.import_rows import FORMATS, TaxClasses
    from control_plane.catalog.import_service import import_catalog
    from control_plane.db.engine import make_engine, migrate

    chosen = next((f for f in FORMATS if f == fmt), None)
    if chosen is None:
        _cannot(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    engine = make_engine(url)
    columns = (
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
    )  # fmt: skip
    try:
        await migrate(engine)
        with Progress(*columns, transient=False) as bars:
            reading = bars.add_task("reading rows (characters)", total=len(text))
            writing = bars.add_task("writing items", total=None, visible=not preview)

            def read(done: int) -> None:
                bars.update(reading, completed=done)

            def wrote(done: int) -> None:
                bars.update(writing, completed=done)

            return await import_catalog(
                engine, tenant_id=tenant, text=text, fmt=chosen, commit=not preview,
                taxes=TaxClasses(taxed=taxed, untaxed=untaxed),
                read_progress=read, write_progress=wrote,
            )  # fmt: skip
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        _cannot(f"cannot write the control plane's store at {url}: {reason}")
    finally:
        await engine.dispose()


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="the CSV file (UTF-8)")],
    tenant: Annotated[str, typer.Option(help="the tenant whose catalog it is")],
    file_format: Annotated[
        str, typer.Option("--format", help="csv (storefleet's columns) or shopify")
    ] = "csv",
    preview: Annotated[bool, typer.Option(help="check and report, write nothing")] = False,
    tax_class: Annotated[str, typer.Option(help="tax class of taxed items")] = "A",
    untaxed_tax_class: Annotated[
        str | None, typer.Option(help="Shopify: class of untaxed variants (default: --tax-class)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="the store (default: STOREFLEET_CP_DATABASE_URL)")
    ] = None,
) -> None:
    """Import a catalog file as one new version, or nothing at all if any row is wrong."""
    from control_plane.catalog.errors import CatalogError
    from control_plane.devices.errors import TenantNotFound

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        _cannot(f"cannot read {path}: {err.strerror or err}")
    except UnicodeDecodeError as err:
        _cannot(f"{path} is not UTF-8 text (byte {err.start}): save it as CSV UTF-8")
    from control_plane.catalog.import_service import ImportRefused

    try:
        report = asyncio.run(
            _run(
                _database_url(database_url),
                tenant=tenant,
                text=text,
                fmt=file_format,
                preview=preview,
                taxed=tax_class,
                untaxed=untaxed_tax_class or tax_class,
            )
        )
    except ImportRefused as err:
        sys.stderr.write(f"storefleet catalog import: {err}\n")
        raise typer.Exit(code=EXIT_ROWS_REFUSED) from err
    except (CatalogError, TenantNotFound) as err:
        _cannot(str(err))
    for error in report.errors:
        where = f" ({error.column})" if error.column else ""
        sys.stdout.write(f"row {error.row}{where}: {error.reason}\n")
    done = "nothing written (preview)" if preview else f"imported as version {report.version}"
    sys.stdout.write(
        f"{report.rows} rows, {report.items} items ({report.new} new, {report.changed} already"
        f" in the catalog), {report.refused} row(s) refused: {done}\n"
    )
    if report.refused:
        raise typer.Exit(code=EXIT_ROWS_REFUSED)
