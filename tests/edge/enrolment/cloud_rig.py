"""What the first-boot tests share: the control plane's mTLS ingest, the printed QR, its sales.

Imported by the kiosk's browser tests and the integration test (not a conftest, so each test
module keeps its fixtures visible in its own file, as `fleet_harness` does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.provisioning.mqtt_identity import ensure_control_plane_identity
from control_plane.sales.tables import sales
from protocols.broker_url import parse_broker_url
from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import Fleet
from tests.harness.scan import read_qr_codes


@contextlib.asynccontextmanager
async def mtls_ingest(
    fleet: Fleet, *, broker_url: str, ca: CertificateAuthority, identity_dir: Path
) -> AsyncIterator[IngestWorker]:
    """The control plane's ingest on the devices' mTLS broker, with its own certificate."""
    worker = IngestWorker(
        engine=fleet.engine,
        broker=parse_broker_url(broker_url),
        settings=IngestSettings(),
        tls_context=ensure_control_plane_identity(ca, identity_dir),
    )
    task = asyncio.create_task(worker.run(), name="first-boot-ingest")
    try:
        async with asyncio.timeout(10):  # guards against a hang; nothing asserts on it
            await worker.connected.wait()
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def scanned_qr(fleet: Fleet, created: dict[str, Any]) -> str:
    """Print the QR as PNG and read it back the way a 2D scanner would."""
    png = await fleet.api.get(created["qr_png_url"])
    assert png.status_code == 200, png.text
    (text,) = read_qr_codes(png.content)
    return text


async def cloud_sales(fleet: Fleet, device_id: str) -> list[tuple[str, str]]:
    """(store, sale id) of every sale the cloud stored for ``device_id``."""
    query = select(sales.c.store_id, sales.c.sale_id).where(sales.c.device_id == device_id)
    async with fleet.engine.connect() as conn:
        return [(row.store_id, row.sale_id) for row in await conn.execute(query)]
