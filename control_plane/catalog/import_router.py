"""``POST /api/catalog/import``: a catalog file (storefleet CSV or Shopify's product export) as
the request body; ``preview=true`` reports without writing, otherwise the whole file is imported
as one catalog version or, with any wrong row, refused (422) with nothing written.

Writing needs ``catalog:write``; ``tenant_id`` is the client's word and must be the caller's own
(403 otherwise, whether the tenant exists or not).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog.errors import CatalogError
from control_plane.catalog.import_rows import ImportFormat, TaxClasses
from control_plane.catalog.import_service import (
    FileUnreadable,
    ImportRefused,
    ImportReport,
    import_catalog,
)
from control_plane.dependencies import get_engine
from control_plane.devices.errors import TenantNotFound
from control_plane.inputs import Identifier
from control_plane.operators.policy import CatalogWrite
from control_plane.problems import problem_responses
from control_plane.tenancy import TenantScope

router = APIRouter(prefix="/api/catalog", tags=["catalog"])
Engine = Annotated[AsyncEngine, Depends(get_engine)]
#: Largest file accepted: 100,000 Shopify rows with descriptions fit several times.
MAX_BYTES = 64 * 1024 * 1024
TaxClass = Annotated[str, Query(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]


class FileTooLarge(CatalogError):  # noqa: N818 - named in the domain's words
    """The body is over :data:`MAX_BYTES`."""

    status = 413
    reason = "catalog_file_too_large"
    advice = "split the file (each part is imported as its own version)"


class NotUtf8(CatalogError):  # noqa: N818 - named in the domain's words
    status = 422
    reason = "catalog_file_not_utf8"
    advice = "save the file as CSV UTF-8"


@router.post(
    "/import",
    responses=problem_responses(
        TenantNotFound, ImportRefused, FileUnreadable, FileTooLarge, NotUtf8
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def post_import(
    request: Request,
    engine: Engine,
    principal: CatalogWrite,
    tenant_id: Annotated[Identifier, Query(description="your tenant")],
    file_format: Annotated[
        ImportFormat, Query(alias="format", description="csv (storefleet's) or shopify")
    ] = "csv",
    preview: Annotated[bool, Query(description="report only, write nothing")] = False,
    tax_class: TaxClass = "A",
    untaxed_tax_class: TaxClass | None = None,
) -> ImportReport:
    """Import (or preview) a catalog file sent as the body (``text/csv``, UTF-8)."""
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BYTES:
        raise FileTooLarge(f"the file is {size} bytes, more than {MAX_BYTES}")
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise FileTooLarge(f"the file is {len(body)} bytes, more than {MAX_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise NotUtf8(f"the file is not UTF-8 text (byte {err.start})") from err
    return await import_catalog(
        engine,
        scope=TenantScope.of(principal),
        tenant_id=tenant_id,
        text=text,
        fmt=file_format,
        commit=not preview,
        taxes=TaxClasses(taxed=tax_class, untaxed=untaxed_tax_class or tax_class),
    )
