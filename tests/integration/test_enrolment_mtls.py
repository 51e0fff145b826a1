"""From a QR code to a trusted appliance: enrolment, mTLS replication, ACL, CRL, replacement.

Real everything: the control plane served by uvicorn on loopback with its SQL store (SQLite and
PostgreSQL), its CA, a Mosquitto configured from images/mosquitto (mTLS, per-device ACL, CRL),
the appliance's `enrol_from_qr` fed with what zxing reads from the QR PNG, the real
`Replicator` with the device's mTLS context and an `IngestWorker` presenting the control plane's
own certificate. "Nothing delivered" is proven without waiting: after the forbidden message an
allowed sentinel follows, and the sentinel must arrive first (the broker keeps order).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from control_plane.devices.tables import devices
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.provisioning.mqtt_identity import ensure_control_plane_identity
from control_plane.sales.tables import sales
from edge.enrolment.first_boot import (
    EnrolmentResult,
    enrol_from_qr,
    mqtt_tls_context,
    replication_identity,
)
from edge.enrolment.stored import agent_tls_context
from edge.ledger import Ledger
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.simulated_register import RingSettings, ring_sales
from protocols.broker_url import parse_broker_url
from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import (
    HOST,
    STORE,
    TENANT,
    Fleet,
    MtlsBroker,
    served_fleet,
    tls_refusal,
)
from tests.harness.scan import read_qr_codes
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

FAST = ReplicationSettings(ack_timeout=1.0, backoff_initial=0.05, backoff_max=0.5)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def fleet(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker
) -> AsyncIterator[Fleet]:
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mosquitto.url,  # the app's own plain ingest idles there
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
    ) as running:
        yield running


@pytest.fixture
def control_plane_tls(fleet_ca: CertificateAuthority, tmp_path: Path) -> ssl.SSLContext:
    """The control plane's own MQTT identity (CN control-plane), issued by the fleet CA."""
    return ensure_control_plane_identity(fleet_ca, tmp_path / "control-plane-identity")


@pytest.fixture
async def mtls_ingest(
    fleet: Fleet, mtls_broker: MtlsBroker, control_plane_tls: ssl.SSLContext
) -> AsyncIterator[IngestWorker]:
    worker = IngestWorker(
        engine=fleet.engine,
        broker=parse_broker_url(mtls_broker.service_url),
        settings=IngestSettings(shared_subscription=True, partitions=2),
        tls_context=control_plane_tls,
    )
    task = asyncio.create_task(worker.run(), name="mtls-ingest")
    async with asyncio.timeout(10):
        await worker.connected.wait()
    yield worker
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _scan(fleet: Fleet, created: dict[str, str]) -> str:
    """Print the QR as PNG and read it back the way a scanner would."""
    png = await fleet.api.get(created["qr_png_url"])
    assert png.status_code == 200, png.text
    (text,) = read_qr_codes(png.content)
    return text


async def _enrol_appliance(fleet: Fleet, identity_dir: Path, **fields: str) -> EnrolmentResult:
    created = await fleet.create_enrolment(**fields)
    return await enrol_from_qr(await _scan(fleet, created), identity_dir=identity_dir)


@contextlib.asynccontextmanager
async def _replicating(
    result: EnrolmentResult, identity_dir: Path, ledger_path: Path
) -> AsyncIterator[Ledger]:
    """The appliance's ledger with the real replicator on mTLS, for the life of the block."""
    identity = replication_identity(identity_dir)
    assert identity.device_id == result.device_id
    async with Ledger(ledger_path, register_id="1") as ledger:
        replicator = Replicator(
            ledger=ledger,
            device_id=identity.device_id,
            broker=identity.broker,
            settings=FAST,
            tls_context=identity.tls_context,
            identity_dir=identity_dir,  # signs each batch head (the cloud refuses unsigned)
        )
        task = asyncio.create_task(replicator.run(), name=f"replicator-{result.device_id}")
        try:
            yield ledger
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _stored_sales(fleet: Fleet, **where: str) -> list[tuple[str, str, str]]:
    query = select(sales.c.device_id, sales.c.store_id, sales.c.sale_id)
    for column, value in where.items():
        query = query.where(sales.c[column] == value)
    async with fleet.engine.connect() as conn:
        return [(r.device_id, r.store_id, r.sale_id) for r in await conn.execute(query)]


def _client(port: int, context: ssl.SSLContext, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        HOST,
        port,
        identifier=f"{name}-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=context,
        timeout=10,
    )


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(10):  # guards against a hang; no assertion depends on it
        return await anext(client.messages)


async def test_a_scanned_qr_becomes_a_trusted_appliance_whose_sale_reaches_the_cloud(
    fleet: Fleet, mtls_broker: MtlsBroker, mtls_ingest: IngestWorker, tmp_path: Path
) -> None:
    identity_dir = tmp_path / "identity"
    created = await fleet.create_enrolment(register_name="till 1")
    scanned = await _scan(fleet, created)

    result = await enrol_from_qr(scanned, identity_dir=identity_dir)
    async with _replicating(result, identity_dir, tmp_path / "ledger.db") as ledger:
        committed = await ring_sales(ledger, RingSettings(rate=0, count=1, seed=7))
        await wait_until(lambda: ledger.backlog == 0, what="the sale acked by the cloud")

    assert result.broker_url == mtls_broker.url
    assert await _stored_sales(fleet, device_id=result.device_id) == [
        (result.device_id, STORE, committed[0].sale_id)
    ]


@SQLITE_ONLY
async def test_a_device_cannot_publish_into_another_devices_topics(
    fleet: Fleet, mtls_broker: MtlsBroker, control_plane_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    device_a = await _enrol_appliance(fleet, tmp_path / "a")
    device_b = await _enrol_appliance(fleet, tmp_path / "b")
    async with (
        _client(mtls_broker.service_port, control_plane_tls, "cp") as cp,
        _client(mtls_broker.port, agent_tls_context(tmp_path / "a"), "a") as appliance_a,
    ):
        await cp.subscribe("sf/v1/d/+/events", qos=1)  # not retained: only what is sent now

        await appliance_a.publish(f"sf/v1/d/{device_b.device_id}/events", b"forged", qos=1)
        await appliance_a.publish(f"sf/v1/d/{device_a.device_id}/events", b"sentinel", qos=1)
        first = await _next_message(cp)

    assert (first.topic.value, first.payload) == (
        f"sf/v1/d/{device_a.device_id}/events",
        b"sentinel",
    )


@SQLITE_ONLY
async def test_a_device_cannot_read_another_devices_topics(
    fleet: Fleet, mtls_broker: MtlsBroker, control_plane_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    device_a = await _enrol_appliance(fleet, tmp_path / "a")
    device_b = await _enrol_appliance(fleet, tmp_path / "b")
    own = f"sf/v1/d/{device_a.device_id}/cmd"
    async with (
        _client(mtls_broker.service_port, control_plane_tls, "cp") as cp,
        _client(mtls_broker.port, agent_tls_context(tmp_path / "a"), "a") as appliance_a,
    ):
        await appliance_a.subscribe(f"sf/v1/d/{device_b.device_id}/#", qos=1)
        await appliance_a.subscribe(own, qos=1)

        await cp.publish(f"sf/v1/d/{device_b.device_id}/cmd", b"not for a", qos=1)
        await cp.publish(own, b"sentinel", qos=1)
        first = await _next_message(appliance_a)

    assert (first.topic.value, first.payload) == (own, b"sentinel")


@SQLITE_ONLY
async def test_a_decommissioned_appliance_is_refused_by_the_broker(
    fleet: Fleet, mtls_broker: MtlsBroker, tmp_path: Path
) -> None:
    retired = await _enrol_appliance(fleet, tmp_path / "retired")
    kept = await _enrol_appliance(fleet, tmp_path / "kept")
    async with _client(mtls_broker.port, mqtt_tls_context(tmp_path / "retired"), "before"):
        pass  # connects while its certificate is good

    answer = await fleet.api.post(
        f"/api/devices/{retired.device_id}/decommission", json={"decommissioned_by": "ops"}
    )
    mtls_broker.reload()

    assert answer.json()["crl_written"] is True
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):
        tls_refusal(mtls_broker.port, mqtt_tls_context(tmp_path / "retired"))
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):  # its agent's too
        tls_refusal(mtls_broker.port, agent_tls_context(tmp_path / "retired"))
    async with _client(mtls_broker.port, mqtt_tls_context(tmp_path / "kept"), "kept") as still_fine:
        await still_fine.publish(f"sf/v1/d/{kept.device_id}/status", b"online", qos=1)


async def test_a_replacement_takes_over_the_register_and_the_store_keeps_its_history(
    fleet: Fleet, mtls_broker: MtlsBroker, mtls_ingest: IngestWorker, tmp_path: Path
) -> None:
    old = await _enrol_appliance(fleet, tmp_path / "old", register_name="till 3")
    async with _replicating(old, tmp_path / "old", tmp_path / "old.db") as ledger:
        before = await ring_sales(ledger, RingSettings(rate=0, count=3, seed=1))
        await wait_until(lambda: ledger.backlog == 0, what="the old appliance's sales acked")

    created = (
        await fleet.api.post(f"/api/devices/{old.device_id}/replace", json={"created_by": "ops"})
    ).json()
    new = await enrol_from_qr(await _scan(fleet, created), identity_dir=tmp_path / "new")
    mtls_broker.reload()  # the control plane rewrote the CRL when the new appliance enrolled
    async with _replicating(new, tmp_path / "new", tmp_path / "new.db") as ledger:
        after = await ring_sales(ledger, RingSettings(rate=0, count=2, seed=2))
        await wait_until(lambda: ledger.backlog == 0, what="the new appliance's sales acked")

    async with fleet.engine.connect() as conn:
        rows = {
            row.id: (row.store_id, row.register_name, row.decommissioned_at is not None)
            for row in await conn.execute(select(devices).where(devices.c.store_id == STORE))
        }
    assert rows == {old.device_id: (STORE, "till 3", True), new.device_id: (STORE, "till 3", False)}
    assert created["enrolment"]["replaces_device_id"] == old.device_id
    history = await _stored_sales(fleet, store_id=STORE)
    assert sorted(history) == sorted(
        [(old.device_id, STORE, sale.sale_id) for sale in before]
        + [(new.device_id, STORE, sale.sale_id) for sale in after]
    )
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):
        tls_refusal(mtls_broker.port, mqtt_tls_context(tmp_path / "old"))
    assert new.config["tenant_id"] == TENANT
