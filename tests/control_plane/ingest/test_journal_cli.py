"""`storefleet-cloud journal verify`, the auditor's command, run as a process on the real store.

An appliance enrolled with a real code replicates signed batches through the real ingest (SQLite
and PostgreSQL); the command then checks the stored copy with the fleet root alone: exit 0 for
the untouched copy, 1 once whoever runs the database rewrites a sale and re-chains every record
after it (a forged chain that is consistent in itself), 2 when the check cannot run.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from control_plane.db.engine import make_engine, migrate
from control_plane.ingest.tables import journal
from control_plane.provisioning import service as provisioning
from edge.enrolment.first_boot import enrol_from_qr
from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from protocols.chain import envelope_bytes, hash_envelope
from provisioning.ca import ROOT_CERT, CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from tests.control_plane.ingest.test_signed_journal import SETTINGS, replicating
from tests.control_plane.provisioning.fleet_harness import STORE, TENANT, Fleet, served_fleet
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

COMMAND = str(Path(sys.executable).with_name("storefleet-cloud"))


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def journal_verify(*args: str) -> Ran:
    """``storefleet-cloud journal verify ARGS`` in its own process."""
    process = await asyncio.create_subprocess_exec(
        COMMAND,
        "journal",
        "verify",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


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


async def replicated_device(fleet: Fleet, mosquitto: Mosquitto, tmp_path: Path) -> str:
    """An enrolled appliance whose 8 sales the cloud stored with their signed heads."""
    created = await provisioning.create_enrolment(
        engine=fleet.engine,
        authority=fleet.authority,
        tenant_id=TENANT,
        store_id=STORE,
        created_by="test-operator",
    )
    identity = tmp_path / "appliance"
    await enrol_from_qr(created.qr_text, identity_dir=identity)
    device_id = DeviceIdentity(identity).device_id()
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=8, seed=8))
        async with replicating(
            ledger, device_id=device_id, mosquitto=mosquitto, identity_dir=identity
        ):
            await wait_until(lambda: ledger.acked_seq == ledger.last_seq, what="all acked")
    assert SETTINGS.batch_size < 8  # several signed heads
    return device_id


async def forge_from(fleet: Fleet, device_id: str, seq: int) -> None:
    """Rewrite record ``seq``'s body and re-chain every record after it: a forged chain that
    continues from the genesis, with every hash right, which the device never signed."""
    async with fleet.engine.begin() as conn:
        rows = (
            await conn.execute(
                select(journal.c.seq, journal.c.kind, journal.c.ts, journal.c.prev_hash)
                .add_columns(journal.c.body)
                .where(journal.c.device_id == device_id, journal.c.seq >= seq)
                .order_by(journal.c.seq)
            )
        ).all()
        previous = rows[0].prev_hash
        for row in rows:
            body = row.body + " " if row.seq == seq else row.body
            new_hash = hash_envelope(
                previous, envelope_bytes(seq=row.seq, kind=row.kind, ts=row.ts, body_text=body)
            )
            await conn.execute(
                update(journal)
                .where(journal.c.device_id == device_id, journal.c.seq == row.seq)
                .values(body=body, prev_hash=previous, hash=new_hash)
            )
            previous = new_hash


async def test_the_untouched_copy_verifies_and_a_forged_chain_exits_1(
    fleet: Fleet,
    mosquitto: Mosquitto,
    fleet_ca: CertificateAuthority,
    database_url: str,
    tmp_path: Path,
) -> None:
    device_id = await replicated_device(fleet, mosquitto, tmp_path)
    root = fleet_ca.directory / ROOT_CERT
    args = ("--ca-root", str(root), "--database-url", database_url)

    clean = await journal_verify(*args, "--device", device_id)
    await forge_from(fleet, device_id, 3)
    forged = await journal_verify(*args)  # every device with a stored journal
    as_json = await journal_verify(*args, "--device", device_id, "--json")

    assert root.is_file()
    assert clean.code == 0, clean.out + clean.err
    assert clean.out.startswith(f"{device_id}: ok: 8 records, signed through seq 8")
    assert forged.code == 1, forged.out + forged.err
    assert f"{device_id}: DOES NOT VERIFY" in forged.out
    assert "names a record hash the stored journal does not hold" in forged.out
    assert as_json.code == 1
    assert '"ok": false' in as_json.out


async def test_a_check_that_cannot_run_exits_2(
    fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    """Exit 2, one line on stderr saying what is missing (one store is enough: nothing here
    depends on which)."""
    store = f"sqlite+aiosqlite:///{tmp_path}/cloud.db"
    engine = make_engine(store)
    await migrate(engine)
    await engine.dispose()
    not_pem = tmp_path / "root.txt"
    not_pem.write_text("not a certificate\n")
    root = str(fleet_ca.directory / ROOT_CERT)

    unreadable = await journal_verify("--ca-root", str(tmp_path / "missing.pem"))
    garbage = await journal_verify("--ca-root", str(not_pem), "--database-url", store)
    unknown = await journal_verify("--ca-root", root, "--database-url", store, "--device", "r-9")
    no_store = await journal_verify(
        "--ca-root", root, "--database-url", f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    )

    assert (unreadable.code, garbage.code, unknown.code, no_store.code) == (2, 2, 2, 2)
    assert "cannot read the fleet root" in unreadable.err
    assert "is not a PEM certificate" in garbage.err
    assert "no stored journal for device 'r-9'" in unknown.err
    assert "cannot read the control plane's store" in no_store.err
