"""The catalog's refusals. An unknown tenant is the registry's :class:`TenantNotFound`.

CatalogError
└── VersionAhead   410  the register's version is newer than the cloud's: fetch the snapshot
"""

from __future__ import annotations

from http import HTTPStatus

from control_plane.problems import DomainError


class CatalogError(DomainError):
    """A catalog request was refused."""

    reason = "catalog_error"


class VersionAhead(CatalogError):  # noqa: N818 - named in the domain's words
    """The register claims a version the cloud never issued (the cloud was restored)."""

    status = HTTPStatus.GONE
    reason = "catalog_version_ahead"
    advice = "fetch the whole catalog from /api/catalog/snapshot"

    def __init__(self, *, since: int, version: int) -> None:
        super().__init__(f"catalog is at version {version}, not {since}; fetch the snapshot")
        self.since = since
        self.version = version
