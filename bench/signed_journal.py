"""Signed journal heads: ingest throughput with signed batch heads beside the same run without.

Goal (issue 9): signed ≥ 0.9× unsigned. What is measured is the cloud's half, where the cost
is: ``ingest_batch`` (the head check — registry look-up kept per device, certificate parsed
once, one ES256 verification per batch — and the transaction that stores records, head and
signature) on PostgreSQL 127.0.0.1:5432 and on SQLite, the same ledgers drained by devices
that have a certificate (signed) and by devices that have none (unsigned, as before). Both
kinds run in every round, alternating which goes first, and the ratio is taken per round
(``bench/rounds.py``: median and spread over ``--rounds``). The broker and the appliance are
left out on purpose: they add the same time to both sides, which would only dilute the ratio.

    .venv/bin/python bench/signed_journal.py [--quick] [--rounds N]

Writes ``bench/results/signed_journal.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.ingest.journal_heads import HeadVerifier
from control_plane.ingest.service import ingest_batch
from control_plane.provisioning.ledger import serial_key, to_ms
from control_plane.provisioning.tables import issued_certificates
from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from protocols.codec import decode
from protocols.journal_signing import HeadSigner
from protocols.journal_wire import batch_bytes
from protocols.messages import JournalBatch
from protocols.topics import Channel, device_topic
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity
from provisioning.keys import public_key_fingerprint
from tests.harness.services import create_pg_database, drop_pg_database

BATCH = 500  # the replicator's default batch size


async def ring(path: Path, count: int) -> list[str]:
    """A ledger's records in wire form: what every device of the run drains."""
    async with Ledger(path, register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=count, seed=11))
        return [r.record for r in await ledger.read_records(1, count)]


def batches(device_id: str, wire: list[str], signer: HeadSigner | None) -> list[JournalBatch]:
    """The batches a replicator would send, decoded as the ingest receives them."""
    out = []
    topic = device_topic(device_id, Channel.JOURNAL)
    for start in range(0, len(wire), BATCH):
        chunk = wire[start : start + BATCH]
        signed = {}
        if signer is not None:
            head = json.loads(chunk[-1])
            signed = {
                "head_sig": signer.sign(seq=head["seq"], record_hash=head["hash"]),
                "cert_fp": signer.fingerprint,
                "cert": signer.certificate_field,
            }
        message = decode(topic, batch_bytes(chunk, sent_at=0, **signed)).message
        assert isinstance(message, JournalBatch)
        out.append(message)
    return out


async def drain(
    engine: AsyncEngine, heads: HeadVerifier, device_id: str, todo: list[JournalBatch]
) -> None:
    """One device's batches, in order, as the ingest worker stores them."""
    for batch in todo:
        outcome = await ingest_batch(
            engine=engine,
            device_id=device_id,
            batch=batch,
            now_ms=time.time_ns() // 1_000_000,
            heads=heads,
        )
        assert outcome.problem is None, outcome.problem


async def certified(
    engine: AsyncEngine, ca: CertificateAuthority, identity: DeviceIdentity, device_id: str
) -> HeadSigner:
    """A certificate for ``device_id``, recorded as the CA's issuance records it; its signer."""
    issued = ca.issue_device_certificate(identity.certificate_request(), device_id=device_id)
    leaf = issued.certificate
    async with engine.begin() as conn:
        await conn.execute(
            issued_certificates.insert().values(
                serial=serial_key(leaf.serial_number),
                kind="device",
                common_name=device_id,
                device_id=device_id,
                not_before=to_ms(leaf.not_valid_before_utc),
                not_after=to_ms(leaf.not_valid_after_utc),
                public_key_sha256=public_key_fingerprint(leaf.public_key()),
            )
        )
    return HeadSigner(
        device_id=device_id,
        private_key=identity.ensure_key(),
        chain=[leaf, issued.issuing_certificate],
    )


async def one_kind(
    engine: AsyncEngine,
    *,
    kind: str,
    shop: str,
    wire: list[str],
    devices_n: int,
    ca: CertificateAuthority,
    identity: DeviceIdentity,
    heads: HeadVerifier,
) -> float:
    """Records per second for ``devices_n`` devices of ``kind`` draining ``wire`` at once."""
    todo = []
    for n in range(devices_n):
        device_id = f"{kind[:2]}-{n}-{uuid.uuid4().hex[:6]}"
        await registry.register_device(engine, device_id=device_id, store_id=shop)
        signer = await certified(engine, ca, identity, device_id) if kind == "signed" else None
        todo.append((device_id, batches(device_id, wire, signer)))
    started = time.perf_counter()
    await asyncio.gather(*(drain(engine, heads, d, b) for d, b in todo))
    return devices_n * len(wire) / (time.perf_counter() - started)


async def main(quick: bool, rounds: Rounds) -> None:
    await measure(quick, rounds)
    print(rounds.table())
    rounds.write(ROOT / "bench" / "results" / "signed_journal.json")


async def measure(quick: bool, rounds: Rounds) -> None:
    """Every round's rates and ratio on both stores into ``rounds`` (bench/trust.py adds them to
    its own table, beside the cost of authentication, as issue 9 asks)."""
    devices_n, per_device = (4, 1000) if quick else (8, 2500)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wire = await ring(work / "template.db", per_device)
        ca = CertificateAuthority.create(work / "ca", passphrase=b"bench signed journal passphrase")
        identity = DeviceIdentity(work / "identity")
        pg_url = await create_pg_database()
        urls = {"postgresql": pg_url, "sqlite": f"sqlite+aiosqlite:///{work / 'cloud.db'}"}
        try:
            for store, url in urls.items():
                engine = make_engine(url)
                await migrate(engine)
                tenant, shop = f"b-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
                await registry.create_tenant(engine, tenant_id=tenant, name="bench")
                await registry.create_store(engine, store_id=shop, tenant_id=tenant, name="bench")
                heads = HeadVerifier(engine)
                for number in rounds.each():
                    order = ("signed", "unsigned") if number % 2 else ("unsigned", "signed")
                    rate = {
                        kind: await one_kind(
                            engine,
                            kind=kind,
                            shop=shop,
                            wire=wire,
                            devices_n=devices_n,
                            ca=ca,
                            identity=identity,
                            heads=heads,
                        )
                        for kind in order
                    }
                    record(rounds, store, rate)
                await engine.dispose()
        finally:
            await drop_pg_database(pg_url)


def record(rounds: Rounds, store: str, rate: dict[str, float]) -> None:
    """One round's figures for ``store``: both rates and their ratio, the goal's figure."""
    for kind, label in (("unsigned", "unsigned"), ("signed", "signed heads")):
        rounds.add(
            f"{store}_{kind}_per_s",
            rate[kind],
            label=f"{store}: {label}",
            unit="records/s",
            digits=0,
        )
    rounds.add(
        f"{store}_ratio",
        rate["signed"] / rate["unsigned"],
        label=f"{store}: signed / unsigned",
        goal=Goal(">=", 0.9),
        digits=3,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    add_rounds_argument(parser)
    args = parser.parse_args()
    asyncio.run(main(args.quick, Rounds("signed_journal", rounds=args.rounds)))
