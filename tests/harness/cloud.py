"""The cloud side in a test: the real ingest worker and store, in-process, restartable."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.audit import ChainAudit, audit_chain
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.sales.tables import sales
from protocols.broker_url import parse_broker_url

TENANT, STORE = "t-test", "s-test"


class Cloud:
    """Store + ingest worker against a real broker and a real database."""

    def __init__(self, *, database_url: str, broker_url: str, partitions: int = 4) -> None:
        self.database_url = database_url
        self.broker_url = broker_url
        self.partitions = partitions
        self.engine: AsyncEngine | None = None
        self.worker: IngestWorker | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.engine = make_engine(self.database_url)
        await migrate(self.engine)
        with contextlib.suppress(registry.AlreadyExists):
            await registry.create_tenant(self.engine, tenant_id=TENANT, name="Test tenant")
            await registry.create_store(self.engine, store_id=STORE, tenant_id=TENANT, name="Test")

    async def start_ingest(self) -> None:
        assert self.engine is not None
        self.worker = IngestWorker(
            engine=self.engine,
            broker=parse_broker_url(self.broker_url),
            settings=IngestSettings(shared_subscription=True, partitions=self.partitions),
        )
        self._task = asyncio.create_task(self.worker.run(), name="test-ingest")
        async with asyncio.timeout(10):
            await self.worker.connected.wait()

    async def stop_ingest(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def close(self) -> None:
        await self.stop_ingest()
        if self.engine is not None:
            await self.engine.dispose()

    async def register(self, device_id: str) -> None:
        assert self.engine is not None
        await registry.register_device(self.engine, device_id=device_id, store_id=STORE)

    async def hwm(self, device_id: str) -> int:
        assert self.engine is not None
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(select(devices.c.hwm).where(devices.c.id == device_id))
                ).scalar_one()
            )

    async def sale_ids(self, device_id: str) -> list[str]:
        """Every stored sale id of the device, duplicates kept so a test can see them."""
        assert self.engine is not None
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(sales.c.sale_id).where(sales.c.device_id == device_id))
            return [str(row[0]) for row in rows]

    async def sales_count(self) -> int:
        assert self.engine is not None
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(sales))).scalar_one())

    async def audit(self, device_id: str) -> ChainAudit:
        assert self.engine is not None
        return await audit_chain(self.engine, device_id=device_id)
