"""Keeping the register's catalog in step with the control plane while the store sells.

How it works: every ``interval`` seconds ``GET /api/catalog/changes?tenant_id=…&since=V`` asks
for what changed after the register's catalog version V and applies it as one ``ChangeSet``.
A change set the catalog refuses (a version conflict: the register missed something or the
cloud was restored) or a 410 answer triggers ``GET /api/catalog/snapshot`` and a full rebuild.
The cloud being unreachable changes nothing at the till: the register keeps selling from the
catalog it has and tries again next time.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from edge.checkout.catalog import Catalog
from edge.checkout.errors import CatalogVersionConflict
from edge.pos.catalog_source import (
    CatalogFormatError,
    catalog_from_json,
    change_set_from_json,
    parse_json,
)
from edge.pos.register import Register

log = logging.getLogger(__name__)


class CatalogSync:
    """Polls the control plane's catalog API for one register."""

    def __init__(
        self,
        *,
        register: Register,
        base_url: str,
        tenant_id: str,
        interval: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.register = register
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.interval = interval
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10.0, transport=self.transport)

    async def fetch_snapshot(self, client: httpx.AsyncClient) -> Catalog:
        """The tenant's whole catalog."""
        response = await client.get("/api/catalog/snapshot", params={"tenant_id": self.tenant_id})
        response.raise_for_status()
        return catalog_from_json(response.content)  # streamed: no whole document in memory

    async def sync_once(self, client: httpx.AsyncClient | None = None) -> int:
        """One round; returns the catalog version afterwards."""
        if client is None:
            async with self._client() as own:
                return await self.sync_once(own)
        catalog = self.register.catalog
        response = await client.get(
            "/api/catalog/changes",
            params={"tenant_id": self.tenant_id, "since": catalog.version},
        )
        if response.status_code == 410:
            self.register.replace_catalog(await self.fetch_snapshot(client))
            return self.register.catalog.version
        response.raise_for_status()
        change = change_set_from_json(parse_json(response.content))
        if change.version == catalog.version:
            return catalog.version  # nothing new
        try:
            self.register.apply_catalog(change)
        except CatalogVersionConflict:
            log.warning("catalog change set does not fit version %d; reloading", catalog.version)
            self.register.replace_catalog(await self.fetch_snapshot(client))
        return self.register.catalog.version

    async def run(self) -> None:
        """Until cancelled; network and format problems are logged and retried."""
        async with self._client() as client:
            while True:
                try:
                    version = await self.sync_once(client)
                    log.debug("catalog at version %d", version)
                except (httpx.HTTPError, CatalogFormatError) as err:
                    log.warning("catalog sync with %s failed: %s; selling on", self.base_url, err)
                await asyncio.sleep(self.interval)
