"""The control plane's own ingest on an mTLS broker: it enrols itself and stores a device's sale."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from control_plane.sales.tables import sales
from edge.enrolment.first_boot import enrol_from_qr, replication_identity
from edge.ledger import Ledger
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.simulated_register import RingSettings, ring_sales
from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import MtlsBroker, served_fleet
from tests.harness.services import wait_until

pytestmark = pytest.mark.services


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_app_ingest_presents_its_own_certificate(
    database_url: str, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker, tmp_path: Path
) -> None:
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mtls_broker.service_url,  # the app's own worker speaks mTLS to it
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
    ) as fleet:
        created = await fleet.create_enrolment()
        result = await enrol_from_qr(created["qr_text"], identity_dir=tmp_path / "appliance")
        identity = replication_identity(tmp_path / "appliance")
        async with Ledger(tmp_path / "edge.db", register_id="1") as ledger:
            replicator = Replicator(
                ledger=ledger,
                device_id=identity.device_id,
                broker=identity.broker,
                settings=ReplicationSettings(ack_timeout=1.0, backoff_max=0.5),
                tls_context=identity.tls_context,
                identity_dir=tmp_path / "appliance",  # signs each batch head
            )
            task = asyncio.create_task(replicator.run())
            committed = await ring_sales(ledger, RingSettings(rate=0, count=3, seed=1))
            await wait_until(lambda: ledger.backlog == 0, what="acks over mTLS")
            task.cancel()
        async with fleet.engine.connect() as conn:
            stored = {
                row[0]
                for row in await conn.execute(
                    select(sales.c.sale_id).where(sales.c.device_id == result.device_id)
                )
            }
        assert stored == {sale.sale_id for sale in committed}
