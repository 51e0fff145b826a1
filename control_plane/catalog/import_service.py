"""Importing a catalog file into a tenant's catalog: a preview, or all of it in one transaction.

How it works: the file is read whole first (:mod:`control_plane.catalog.import_rows`); when any
row is wrong nothing is written and the report lists each refused row with its reason — a
preview shows the same report without writing either. A file without errors is written as ONE
new catalog version in one transaction (the catalog's own counter lock and upsert, in chunks
so a progress bar can follow), so registers get it in one change set and a failure half way
leaves the catalog as it was. The preview says how many items are new and how many change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy import String, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.catalog.errors import CatalogError
from control_plane.catalog.import_rows import (
    FileRefused,
    ImportedItem,
    ImportFormat,
    ReadResult,
    RowError,
    TaxClasses,
    read_rows,
)
from control_plane.catalog.schemas import CatalogItem
from control_plane.catalog.service import _next_version, _require_tenant, _upsert
from control_plane.catalog.tables import catalog_items
from control_plane.devices.errors import TenantNotFound
from control_plane.devices.tables import tenants
from control_plane.tenancy import EVERY_TENANT, TenantScope
from protocols.currency import minor_unit_digits

log = logging.getLogger(__name__)

IMPORTS = Counter(
    "storefleet_catalog_imports", "Catalog imports, by outcome", ["outcome"]
)  # previewed, imported, refused
#: Items written per statement batch between progress reports.
WRITE_CHUNK = 5000
SAMPLE = 20

Progress = Callable[[int], None]


class RowErrorOut(BaseModel):
    row: int
    column: str
    reason: str


class ImportReport(BaseModel):
    """What a file holds and what happened to it; ``errors``: the first 1,000 refused rows."""

    format: str
    rows: int
    items: int
    new: int
    changed: int
    refused: int
    errors: list[RowErrorOut]
    sample: list[CatalogItem]
    imported: bool
    version: int | None = None


@dataclass(eq=False, kw_only=True)
class ImportRefused(CatalogError):  # noqa: N818 - named in the domain's words
    """The file has wrong rows: nothing was imported."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "catalog_import_refused"
    advice = "correct the rows named (preview the file to see every one) and import it again"
    message = "{refused} row(s) refused, nothing imported: {first}"

    refused: int
    first: str


@dataclass(eq=False, kw_only=True)
class FileUnreadable(CatalogError):  # noqa: N818 - named in the domain's words
    """The file is not a catalog file of the format at all."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "catalog_file_unreadable"
    advice = "export the file again as CSV (UTF-8) in the format named, with its header row"
    message = "{why}"

    why: str


def _said(errors: Sequence[RowError]) -> str:
    shown = "; ".join(
        f"row {e.row}{f' ({e.column})' if e.column else ''}: {e.reason}" for e in errors[:10]
    )
    return shown + (" …" if len(errors) > 10 else "")


async def _exponent(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        currency = (
            await conn.execute(select(tenants.c.currency).where(tenants.c.id == tenant_id))
        ).scalar_one_or_none()
    if currency is None:
        raise TenantNotFound(tenant_id)
    return minor_unit_digits(str(currency))


async def _existing(engine: AsyncEngine, tenant_id: str, ids: Sequence[str]) -> int:
    """How many of ``ids`` the tenant's catalog holds (live): one query on PostgreSQL."""
    found = 0
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            query = select(func.count()).where(
                catalog_items.c.tenant_id == tenant_id,
                catalog_items.c.item_id == func.any(bindparam("ids", type_=ARRAY(String))),
                catalog_items.c.deleted.is_(False),
            )
            return int((await conn.execute(query, {"ids": list(ids)})).scalar_one())
        for start in range(0, len(ids), 500):
            rows = await conn.execute(
                select(func.count()).where(
                    catalog_items.c.tenant_id == tenant_id,
                    catalog_items.c.item_id.in_(ids[start : start + 500]),
                    catalog_items.c.deleted.is_(False),
                )
            )
            found += int(rows.scalar_one())
    return found


async def read_file(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    tenant_id: str,
    text: str,
    fmt: ImportFormat,
    taxes: TaxClasses | None = None,
    progress: Progress | None = None,
) -> ReadResult:
    """The file's items and refused rows (``tenant_id`` must be in ``scope``)."""
    scope.claim(tenant_id, action="catalog:write")
    exponent = await _exponent(engine, tenant_id)
    try:
        return await asyncio.to_thread(
            read_rows, text, fmt=fmt, exponent=exponent, taxes=taxes, progress=progress
        )
    except FileRefused as err:
        IMPORTS.labels("refused").inc()
        raise FileUnreadable(why=str(err)) from err


async def import_catalog(
    engine: AsyncEngine,
    *,
    scope: TenantScope = EVERY_TENANT,
    tenant_id: str,
    text: str,
    fmt: ImportFormat,
    commit: bool,
    taxes: TaxClasses | None = None,
    read_progress: Progress | None = None,
    write_progress: Progress | None = None,
) -> ImportReport:
    """Preview (``commit`` False) or import a file; a file with wrong rows is never imported."""
    read = await read_file(
        engine, scope=scope, tenant_id=tenant_id, text=text, fmt=fmt, taxes=taxes,
        progress=read_progress,
    )  # fmt: skip
    if commit and read.error_count:
        IMPORTS.labels("refused").inc()
        log.info(
            "catalog import for %s refused: %d bad row(s); preview it to see them",
            tenant_id,
            read.error_count,
        )
        raise ImportRefused(refused=read.error_count, first=_said(read.errors))
    ids = [item.id for item in read.items]
    existing = await _existing(engine, tenant_id, ids)
    version = None
    if commit:
        version = await write_items(
            engine, tenant_id=tenant_id, items=read.items, progress=write_progress
        )
        IMPORTS.labels("imported").inc()
    else:
        IMPORTS.labels("previewed").inc()
    return ImportReport(
        format=fmt,
        rows=read.rows,
        items=len(read.items),
        new=len(ids) - existing,
        changed=existing,
        refused=read.error_count,
        errors=[RowErrorOut(row=e.row, column=e.column, reason=e.reason) for e in read.errors],
        sample=[item.as_catalog_item() for item in read.items[:SAMPLE]],
        imported=commit,
        version=version,
    )


async def write_items(
    engine: AsyncEngine,
    *,
    tenant_id: str,
    items: Sequence[ImportedItem],
    progress: Progress | None = None,
) -> int:
    """Every item as one new catalog version, in one transaction; returns the version.

    On PostgreSQL the rows are COPYed into a temporary table and upserted from it in one
    statement (the catalog's per-batch upsert took about 1 ms an item here, minutes for a big
    file); SQLite takes the catalog's own upsert. Either way the tenant's version counter is
    locked for the whole transaction, as every catalog change does.
    """
    async with engine.begin() as conn:
        await _require_tenant(conn, tenant_id)
        version = await _next_version(conn, tenant_id)
        if conn.dialect.name == "postgresql":
            await _copy_upsert(conn, tenant_id, version, items, progress)
            return version
        for start in range(0, len(items), WRITE_CHUNK):
            chunk = [item.as_catalog_item() for item in items[start : start + WRITE_CHUNK]]
            await _upsert(conn, tenant_id=tenant_id, version=version, items=chunk)
            if progress is not None:
                progress(start + len(chunk))
    return version


async def _copy_upsert(
    conn: AsyncConnection,
    tenant_id: str,
    version: int,
    items: Sequence[ImportedItem],
    progress: Progress | None,
) -> None:
    raw = (await conn.get_raw_connection()).driver_connection
    if raw is None:  # pragma: no cover - an asyncpg connection always has its driver's
        raise RuntimeError("no driver connection")
    await conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE catalog_import (item_id text, body text) ON COMMIT DROP"
    )
    latest = {item.id: item for item in items}  # the last of one id wins, as in an upsert
    rows = list(latest.values())
    for start in range(0, len(rows), WRITE_CHUNK):
        chunk = rows[start : start + WRITE_CHUNK]
        records = [(item.id, item.body(version)) for item in chunk]
        await raw.copy_records_to_table("catalog_import", records=records)
        if progress is not None:
            progress(start + len(chunk))
    await conn.execute(
        text(
            "INSERT INTO catalog_items (tenant_id, item_id, version, deleted, body) "
            "SELECT :tenant, item_id, :version, false, body FROM catalog_import "
            "ON CONFLICT (tenant_id, item_id) DO UPDATE SET "
            "version = excluded.version, deleted = false, body = excluded.body"
        ),
        {"tenant": tenant_id, "version": version},
    )
