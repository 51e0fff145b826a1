"""Signed journal heads on the real broker and stores: what the device signed is all that is stored.

The control plane runs under uvicorn with its ingest on a private Mosquitto that has no ACL, the
embedded development broker's situation: anyone may publish on any device's topic. Appliances
enrol with real enrolment codes and replicate with the real replicator; the cloud's copy is then
re-verified by the auditor's function with the fleet CA's root alone. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.devices.tables import devices
from control_plane.ingest.journal_audit import verify_journal
from control_plane.ingest.tables import journal, journal_heads
from control_plane.provisioning import service as provisioning
from edge.enrolment.first_boot import enrol_from_qr
from edge.enrolment.renewal import renew_certificate
from edge.ledger import Ledger
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.simulated_register import RingSettings, ring_sales
from protocols.broker_url import parse_broker_url
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from tests.control_plane.provisioning.fleet_harness import (
    STORE,
    TENANT,
    Fleet,
    make_ca,
    served_fleet,
)
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

# small batches: several signed heads per run
SETTINGS = ReplicationSettings(
    batch_size=4, ack_timeout=1.0, backoff_initial=0.05, backoff_max=0.5, error_backoff=0.5
)


@pytest.fixture
async def fleet(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[Fleet]:
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        crl_file=tmp_path / "crl.pem",
    ) as running:
        yield running


async def enrol(fleet: Fleet, directory: Path) -> str:
    """An appliance enrolled with a real code; its device id."""
    created = await provisioning.create_enrolment(
        engine=fleet.engine,
        authority=fleet.authority,
        tenant_id=TENANT,
        store_id=STORE,
        created_by="test-operator",
    )
    await enrol_from_qr(created.qr_text, identity_dir=directory)
    return DeviceIdentity(directory).device_id()


@contextlib.asynccontextmanager
async def replicating(
    ledger: Ledger, *, device_id: str, mosquitto: Mosquitto, identity_dir: Path | None
) -> AsyncIterator[Replicator]:
    """The real replicator for ``ledger`` on the broker without ACL, until the block ends."""
    replicator = Replicator(
        ledger=ledger,
        device_id=device_id,
        broker=parse_broker_url(mosquitto.url),
        settings=SETTINGS,
        identity_dir=identity_dir,
    )
    task = asyncio.create_task(replicator.run())
    try:
        yield replicator
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def sell_and_replicate(
    ledger: Ledger, count: int, *, device_id: str, mosquitto: Mosquitto, identity_dir: Path
) -> None:
    """Ring ``count`` sales and wait until the cloud acked all of them."""
    await ring_sales(ledger, RingSettings(rate=0, count=count, seed=1000 + ledger.last_seq))
    async with replicating(
        ledger, device_id=device_id, mosquitto=mosquitto, identity_dir=identity_dir
    ):
        await wait_until(lambda: ledger.acked_seq == ledger.last_seq, what="all acked")


async def device_flag(engine: AsyncEngine, device_id: str) -> tuple[bool, str | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(devices.c.chain_ok, devices.c.chain_detail).where(devices.c.id == device_id)
            )
        ).one()
    return bool(row.chain_ok), row.chain_detail


async def stored(engine: AsyncEngine, table: Table, device_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.device_id == device_id)
        )
    return int(count or 0)


def refused(reason: str) -> float:
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("storefleet_ingest_heads_refused_total", labels) or 0.0


def root_of(ca: CertificateAuthority) -> x509.Certificate:
    return ca.root_certificate


async def test_signed_batches_are_stored_with_their_heads_and_audit_clean(
    fleet: Fleet, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = tmp_path / "appliance"
    device_id = await enrol(fleet, identity)
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await sell_and_replicate(
            ledger, 10, device_id=device_id, mosquitto=mosquitto, identity_dir=identity
        )

    report = await verify_journal(fleet.engine, device_id=device_id, ca_root=root_of(fleet_ca))

    assert report.problems == []
    assert (report.records, report.signed_through, report.unsigned_tail) == (10, 10, 0)
    assert report.heads_verified == await stored(fleet.engine, journal_heads, device_id) >= 3
    assert await device_flag(fleet.engine, device_id) == (True, None)


async def test_the_auditor_finds_a_record_changed_in_the_clouds_copy(
    fleet: Fleet, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = tmp_path / "appliance"
    device_id = await enrol(fleet, identity)
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await sell_and_replicate(
            ledger, 6, device_id=device_id, mosquitto=mosquitto, identity_dir=identity
        )
    async with fleet.engine.begin() as conn:  # whoever runs the database rewrites a sale
        await conn.execute(
            update(journal)
            .where(journal.c.device_id == device_id, journal.c.seq == 2)
            .values(body=journal.c.body + " ")
        )

    report = await verify_journal(fleet.engine, device_id=device_id, ca_root=root_of(fleet_ca))

    assert report.problems == ["seq 2: hash does not match the stored record"]


def forged_identity(directory: Path, *, device_id: str) -> None:
    """A key and a self-made certificate naming ``device_id``: what a forger can make."""
    identity = DeviceIdentity(directory)
    key = identity.ensure_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    identity.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


async def test_a_forged_consistent_chain_on_the_devices_topic_is_refused_and_flagged(
    fleet: Fleet, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = await enrol(fleet, tmp_path / "appliance")
    forger = tmp_path / "forger"
    forged_identity(forger, device_id=device_id)
    before = refused("unknown_certificate")

    async with Ledger(tmp_path / "forged.db", register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=5, seed=3))  # a consistent chain
        async with replicating(
            ledger, device_id=device_id, mosquitto=mosquitto, identity_dir=forger
        ) as replicator:
            await wait_until(lambda: replicator.refusal is not None, what="the cloud's refusal")

    assert replicator.refusal is not None
    assert "journal head refused (unknown_certificate)" in replicator.refusal
    assert ledger.acked_seq == 0
    assert await stored(fleet.engine, journal, device_id) == 0
    ok, detail = await device_flag(fleet.engine, device_id)
    assert not ok
    assert "unknown_certificate" in (detail or "")
    assert refused("unknown_certificate") >= before + 1


async def test_another_enrolled_devices_certificate_cannot_sign_for_a_device(
    fleet: Fleet, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The forger is an enrolled appliance of the same store: its certificate is the fleet CA's
    and its signatures are good, but they speak for its own device only."""
    victim = await enrol(fleet, tmp_path / "victim")
    await enrol(fleet, tmp_path / "thief")
    before = refused("unknown_certificate")

    async with Ledger(tmp_path / "forged.db", register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=5, seed=4))  # a consistent chain
        async with replicating(
            ledger, device_id=victim, mosquitto=mosquitto, identity_dir=tmp_path / "thief"
        ) as replicator:
            await wait_until(lambda: replicator.refusal is not None, what="the cloud's refusal")

    assert replicator.refusal is not None
    assert "journal head refused (unknown_certificate)" in replicator.refusal
    assert ledger.acked_seq == 0
    assert await stored(fleet.engine, journal, victim) == 0
    ok, detail = await device_flag(fleet.engine, victim)
    assert not ok
    assert "unknown_certificate" in (detail or "")
    assert refused("unknown_certificate") >= before + 1


async def test_unsigned_batches_from_a_device_with_a_certificate_are_refused(
    fleet: Fleet, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = await enrol(fleet, tmp_path / "appliance")
    before = refused("unsigned")

    async with Ledger(tmp_path / "bench.db", register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=3, seed=4))
        # a ledger-only bench appliance: no identity directory, so nothing is signed
        async with replicating(
            ledger, device_id=device_id, mosquitto=mosquitto, identity_dir=None
        ) as replicator:
            await wait_until(lambda: replicator.refusal is not None, what="the cloud's refusal")

    assert replicator.refusal is not None
    assert "journal head refused (unsigned)" in replicator.refusal
    assert await stored(fleet.engine, journal, device_id) == 0
    assert (await device_flag(fleet.engine, device_id))[0] is False
    assert refused("unsigned") >= before + 1


async def test_after_renewal_new_batches_verify_and_the_old_history_still_does(
    fleet: Fleet, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    identity = tmp_path / "appliance"
    device_id = await enrol(fleet, identity)
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await sell_and_replicate(
            ledger, 5, device_id=device_id, mosquitto=mosquitto, identity_dir=identity
        )
        await asyncio.sleep(1.1)  # the renewed certificate starts in a later second
        old = DeviceIdentity(identity).certificate()
        renewed = await renew_certificate(identity)
        await sell_and_replicate(
            ledger, 5, device_id=device_id, mosquitto=mosquitto, identity_dir=identity
        )

    report = await verify_journal(fleet.engine, device_id=device_id, ca_root=root_of(fleet_ca))

    assert renewed.leaf.serial_number != old.serial_number
    assert report.problems == []
    assert (report.records, report.signed_through, report.unsigned_tail) == (10, 10, 0)
    assert len(report.certificates) == 2  # the old history keeps its own certificate


async def test_after_replacement_both_devices_histories_verify(
    fleet: Fleet, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    broken_dir, new_dir = tmp_path / "broken", tmp_path / "new"
    broken = await enrol(fleet, broken_dir)
    async with Ledger(tmp_path / "broken.db", register_id="1") as ledger:
        await sell_and_replicate(
            ledger, 5, device_id=broken, mosquitto=mosquitto, identity_dir=broken_dir
        )
    created = await provisioning.replace(
        engine=fleet.engine, authority=fleet.authority, device_id=broken, created_by="ops"
    )
    await enrol_from_qr(created.qr_text, identity_dir=new_dir)  # retires and revokes the old
    successor = DeviceIdentity(new_dir).device_id()
    async with Ledger(tmp_path / "new.db", register_id="1") as ledger:
        await sell_and_replicate(
            ledger, 5, device_id=successor, mosquitto=mosquitto, identity_dir=new_dir
        )

    root = root_of(fleet_ca)
    old_report = await verify_journal(fleet.engine, device_id=broken, ca_root=root)
    new_report = await verify_journal(fleet.engine, device_id=successor, ca_root=root)

    assert successor != broken
    assert (old_report.problems, old_report.signed_through) == ([], 5)
    assert (new_report.problems, new_report.signed_through) == ([], 5)


async def test_the_auditor_refuses_a_certificate_the_fleet_root_did_not_sign(
    fleet: Fleet, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    identity = tmp_path / "appliance"
    device_id = await enrol(fleet, identity)
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await sell_and_replicate(
            ledger, 4, device_id=device_id, mosquitto=mosquitto, identity_dir=identity
        )
    other_root = make_ca(tmp_path / "other-ca")

    report = await verify_journal(fleet.engine, device_id=device_id, ca_root=root_of(other_root))

    assert report.heads_verified == 0
    assert len(report.problems) >= 1
    assert all("not signed by its issuer" in p for p in report.problems)
