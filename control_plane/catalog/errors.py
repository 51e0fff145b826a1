"""The catalog's refusals. An unknown tenant is the registry's :class:`TenantNotFound`.

CatalogError
└── VersionAhead   410  the register's version is newer than the cloud's: fetch the snapshot
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from control_plane.problems import DomainError


class CatalogError(DomainError):
    """A catalog request was refused."""

    reason = "catalog_error"


@dataclass(eq=False, kw_only=True)
class VersionAhead(CatalogError):  # noqa: N818 - named in the domain's words
    """The register claims a version the cloud never issued (the cloud was restored)."""

    status = HTTPStatus.GONE
    reason = "catalog_version_ahead"
    advice = "fetch the whole catalog from /api/catalog/snapshot"
    message = "catalog is at version {version}, not {since}; fetch the snapshot"

    since: int
    version: int
