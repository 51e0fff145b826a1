"""Keeping the register's catalog in step with the control plane while the store sells.

How it works: every ``interval`` seconds ``GET /api/catalog/changes?since=V`` asks for what
changed after the register's catalog version V and applies it as one ``ChangeSet``.
A change set the catalog refuses (a version conflict: the register missed something or the
cloud was restored) or a 410 answer triggers ``GET /api/catalog/snapshot`` and a full rebuild
(a stored catalog, :mod:`edge.pos.catalog_store`, is rewritten in a worker thread and reopened:
the till sells from the old one meanwhile).
The cloud being unreachable changes nothing at the till: the register keeps selling from the
catalog it has and tries again next time.

Every call carries the appliance's own assertion (``auth``: ``edge.enrolment.device_auth``;
without one the control plane refuses every call, 401), and it answers with the catalog of the
tenant the device's registry entry names; a ``tenant_id`` given here is only sent along as a
check (another tenant's answers 404). A refusal is logged once with the control plane's advice,
not again every round until it changes.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from edge.checkout.errors import CatalogVersionConflict
from edge.enrolment.errors import NotEnrolled
from edge.pos.catalog_source import (
    CatalogFormatError,
    catalog_from_json,
    change_set_from_json,
    parse_json,
)
from edge.pos.catalog_store import StoredCatalog, import_snapshot
from edge.pos.register import Register

log = logging.getLogger(__name__)


class CatalogSync:
    """Polls the control plane's catalog API for one register."""

    def __init__(
        self,
        *,
        register: Register,
        base_url: str,
        auth: httpx.Auth | None = None,
        tenant_id: str | None = None,
        interval: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.register = register
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.tenant_id = tenant_id
        self.interval = interval
        self.transport = transport
        self._last_failure = ""

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, timeout=10.0, transport=self.transport, auth=self.auth
        )

    def _params(self, **more: int) -> dict[str, str | int]:
        mine: dict[str, str | int] = {} if self.tenant_id is None else {"tenant_id": self.tenant_id}
        return mine | more

    async def reload(self, client: httpx.AsyncClient) -> None:
        """The tenant's whole catalog in place of the register's."""
        response = await client.get("/api/catalog/snapshot", params=self._params())
        response.raise_for_status()
        catalog = self.register.catalog
        if isinstance(catalog, StoredCatalog):
            await asyncio.to_thread(import_snapshot, catalog.path, response.content)
            catalog.reopen()
            self.register.check_tax_classes(f"catalog {catalog.version}")
            self.register.changed()
        else:
            self.register.replace_catalog(catalog_from_json(response.content))  # streamed

    async def sync_once(self, client: httpx.AsyncClient | None = None) -> int:
        """One round; returns the catalog version afterwards."""
        if client is None:
            async with self._client() as own:
                return await self.sync_once(own)
        catalog = self.register.catalog
        response = await client.get(
            "/api/catalog/changes", params=self._params(since=catalog.version)
        )
        if response.status_code == 410:
            await self.reload(client)
            return self.register.catalog.version
        response.raise_for_status()
        change = change_set_from_json(parse_json(response.content))
        if change.version == catalog.version:
            return catalog.version  # nothing new
        try:
            self.register.apply_catalog(change)
        except CatalogVersionConflict:
            log.warning("catalog change set does not fit version %d; reloading", catalog.version)
            await self.reload(client)
        return self.register.catalog.version

    async def run(self) -> None:
        """Until cancelled; network and format problems are logged and retried."""
        async with self._client() as client:
            while True:
                try:
                    version = await self.sync_once(client)
                    log.debug("catalog at version %d", version)
                    self._last_failure = ""
                except (httpx.HTTPError, CatalogFormatError, NotEnrolled) as err:
                    failure = _failure(err)
                    if failure != self._last_failure:  # once per kind, not every round
                        log.warning(
                            "catalog sync with %s failed: %s; selling on", self.base_url, failure
                        )
                    self._last_failure = failure
                await asyncio.sleep(self.interval)


def _failure(err: Exception) -> str:
    """What went wrong, with the control plane's reason and advice when it refused."""
    if not isinstance(err, httpx.HTTPStatusError):
        return f"{type(err).__name__}: {err}"
    try:
        problem = err.response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return f"HTTP {err.response.status_code}"
    advice = problem.get("advice")
    return (
        f"HTTP {err.response.status_code} {problem.get('reason', '')}: {problem.get('detail', '')}"
        + (f"; {advice}" if advice else "")
    )
