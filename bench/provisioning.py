"""Provisioning benchmark: enrolments per second through the API, QR scan to first sale.

* Enrolment rate: the control plane runs as its own process (``storefleet serve``, SQLite and
  PostgreSQL), a pool of enrolments is created through the API, and every CSR is generated
  before the clock starts, so the figure is the server's: claim, registry insert, signing and
  the SQL ledger, per ``POST /api/enrol``. The timed requests are encoded beforehand and sent
  by ``bench/lean_http.py`` (httpx took 3-4 ms of CPU per request on this 2-core machine, more
  than the server's own work for a small request); the client's CPU per enrolment is reported
  beside the server's. Devices are sent to a plain ``mqtt://`` broker (a one-machine install),
  so no broker access list is changed. Goal >= 200/s. One control plane per back end,
  ``--rounds`` rounds on it (default 5, ``bench/rounds.py``); the median and spread are
  reported.
* Scan to first sale: one appliance, from decoding the QR PNG (what the scanner does) through
  enrolment, mTLS connect to a Mosquitto configured from images/mosquitto, ringing one sale,
  to that sale stored in the cloud by an ingest worker on its own mTLS identity. Goal < 10 s.
  One run per round.

    .venv/bin/python bench/provisioning.py [--quick] [--rounds N] [--only enrol|scan]

Writes ``bench/results/provisioning.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import zxingcpp
from PIL import Image
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lean_http import post_json, send_all
from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.provisioning.mqtt_identity import ensure_control_plane_identity
from control_plane.sales.tables import sales
from edge.enrolment.first_boot import enrol_from_qr, mqtt_tls_context
from edge.ledger import Ledger
from edge.replication.replicator import ReplicationSettings, Replicator
from edge.simulated_register import RingSettings, ring_sales
from protocols.broker_url import parse_broker_url
from provisioning.keys import build_csr, generate_private_key
from tests.control_plane.provisioning.fleet_harness import (
    PASSPHRASE,
    STORE,
    TENANT,
    MtlsBroker,
    make_ca,
    served_fleet,
)
from tests.harness.control_plane import bearer, bootstrap_admin
from tests.harness.services import (
    Mosquitto,
    create_pg_database,
    drop_pg_database,
    free_port,
    port_open,
)

CONCURRENCY = 32
HOST = "127.0.0.1"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from the kernel."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_control_plane(
    *, database_url: str, broker_url: str, ca_dir: Path, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STOREFLEET_CP_DATABASE_URL": database_url,
        "STOREFLEET_CP_BROKER_URL": broker_url,
        "STOREFLEET_CP_PORT": str(port),
        "STOREFLEET_CA_DIRECTORY": str(ca_dir),
        "STOREFLEET_CA_PASSPHRASE": PASSPHRASE,
        "STOREFLEET_CA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # devices are sent to the same plain broker (a one-machine install): there is no access
        # list to change, so each grant is one skipped call and one log line, not a refused
        # connection to the default mqtts://127.0.0.1:8883 that nothing here listens on
        "STOREFLEET_CA_DEVICE_BROKER_URL": broker_url,
        # one operator creates 1,000 enrolments a round through the API: past the default 100
        # requests a minute per client, which guards the API, not this measurement
        "STOREFLEET_AUTH_API_RATE_PER_MINUTE": str(10**9),
    }
    with log.open("wb") as out:  # kept: a round that fails shows the server's last words
        process = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 30
    while not port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("control plane did not start")
        time.sleep(0.05)
    return process


async def enrol_rate(
    database_url: str, broker_url: str, workdir: Path, per_round: int, rounds: Rounds, backend: str
) -> None:
    ca = make_ca(workdir / f"ca-{time.monotonic_ns()}")
    port = free_port()
    log = workdir / f"control-plane-{backend}.log"
    admin = bearer(await bootstrap_admin(database_url))  # operator routes are guarded
    process = start_control_plane(
        database_url=database_url, broker_url=broker_url, ca_dir=ca.directory, port=port, log=log
    )
    base = f"http://{HOST}:{port}"
    try:
        # httpx for the set-up; the timed requests go through bench/lean_http.py, encoded
        # before the clock starts, so the client does not take the core the server needs
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=admin) as api:
            for path, document in (
                ("/api/tenants", {"id": TENANT, "name": "Acme"}),
                ("/api/stores", {"id": STORE, "tenant_id": TENANT, "name": "HQ"}),
            ):
                made = await api.post(path, json=document)
                assert made.is_success, made.text
            warm = await api.get("/api/ca.pem")  # opens the CA (key decryption) before timing
            assert warm.status_code == 200, warm.text
            for _ in rounds.each():
                body = {"tenant_id": TENANT, "store_id": STORE, "created_by": "bench"}
                creations = [post_json(HOST, port, "/api/enrolments", body, headers=admin)]
                creations *= per_round
                started = time.perf_counter()
                created = await send_all(HOST, port, creations, concurrency=CONCURRENCY)
                create_rate = per_round / (time.perf_counter() - started)
                refused = [c.body for c in created if c.status != 201]
                assert not refused, refused[:3]
                tokens = [c.json()["qr_text"].split("t=")[1].split("&")[0] for c in created]
                requests = [
                    post_json(
                        HOST,
                        port,
                        "/api/enrol",
                        {
                            "token": token,
                            "csr_pem": build_csr(generate_private_key(), common_name="b").decode(),
                        },
                    )
                    for token in tokens
                ]
                started, cpu = time.perf_counter(), cpu_seconds(process.pid)
                client_cpu = time.process_time()
                answers = await send_all(HOST, port, requests, concurrency=CONCURRENCY)
                rate = per_round / (time.perf_counter() - started)
                cpu_ms = (cpu_seconds(process.pid) - cpu) * 1000 / per_round
                client_ms = (time.process_time() - client_cpu) * 1000 / per_round
                failed = [a.body for a in answers if a.status != 200]
                assert not failed, failed[:3]
                assert len(answers) == per_round
                rounds.add(
                    f"enrol_{backend}",
                    rate,
                    label=f"POST /api/enrol ({backend}, {CONCURRENCY} in flight)",
                    unit="/s",
                    goal=Goal(">=", 200),
                    digits=0,
                )
                rounds.add(
                    f"enrol_cpu_{backend}",
                    cpu_ms,
                    label=f"  server CPU per enrolment ({backend})",
                    unit="ms",
                    digits=2,
                )
                rounds.add(
                    f"enrol_client_cpu_{backend}",
                    client_ms,
                    label=f"  bench client CPU per enrolment ({backend})",
                    unit="ms",
                    digits=2,
                )
                rounds.add(
                    f"create_{backend}",
                    create_rate,
                    label=f"POST /api/enrolments ({backend})",
                    unit="/s",
                    digits=0,
                )
    except Exception:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        print(f"control plane exit code {process.poll()}; its log ends:", *tail, sep="\n  ")
        raise
    finally:
        process.terminate()
        process.wait(10)


async def scan_to_sale(
    database_url: str, broker_url: str, workdir: Path, rounds: Rounds, backend: str
) -> None:
    ca = make_ca(workdir / f"ca-scan-{time.monotonic_ns()}")
    broker = MtlsBroker(workdir / f"mtls-{time.monotonic_ns()}", ca=ca)
    broker.start()
    try:
        async with served_fleet(
            database_url=database_url,
            ingest_broker_url=broker_url,
            ca_directory=ca.directory,
            device_broker_url=broker.url,
            service_broker_url=broker.service_url,  # control-plane sessions: not bound
        ) as fleet:
            worker = IngestWorker(
                engine=fleet.engine,
                broker=parse_broker_url(broker.service_url),
                settings=IngestSettings(shared_subscription=True, partitions=2),
                tls_context=ensure_control_plane_identity(ca, workdir / "cp-identity"),
            )
            ingest = asyncio.create_task(worker.run())
            async with asyncio.timeout(20):
                await worker.connected.wait()
            for run in rounds.each():
                created = await fleet.create_enrolment()
                png = (await fleet.api.get(created["qr_png_url"])).content
                identity = workdir / f"identity-{time.monotonic_ns()}"
                started = time.perf_counter()
                scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))[0].text
                result = await enrol_from_qr(scanned, identity_dir=identity)
                async with Ledger(identity / "ledger.db", register_id="1") as ledger:
                    replicator = Replicator(
                        ledger=ledger,
                        device_id=result.device_id,
                        broker=result.broker,
                        settings=ReplicationSettings(ack_timeout=1.0, backoff_initial=0.05),
                        tls_context=mqtt_tls_context(identity),
                        identity_dir=identity,  # an enrolled appliance signs its batch heads
                    )
                    task = asyncio.create_task(replicator.run())
                    [sale] = await ring_sales(ledger, RingSettings(rate=0, count=1, seed=run))
                    query = select(sales.c.sale_id).where(sales.c.sale_id == sale.sale_id)
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        async with fleet.engine.connect() as conn:
                            if (await conn.execute(query)).first() is not None:
                                break
                        await asyncio.sleep(0.005)
                    rounds.add(
                        f"scan_to_sale_{backend}",
                        time.perf_counter() - started,
                        label=f"QR scan -> first sale in the cloud ({backend})",
                        unit="s",
                        goal=Goal("<", 10),
                        digits=2,
                    )
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            ingest.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ingest
    finally:
        broker.stop()


async def database(backend: str, sqlite_file: Path) -> str:
    """A fresh store: a SQLite file, or a new PostgreSQL database (dropped by the caller)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{sqlite_file}"
    return await create_pg_database()


async def main(quick: bool, rounds: Rounds, only: str | None) -> None:
    per_round = 200 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        plain = Mosquitto(workdir)
        plain.start()
        try:
            for backend in ("sqlite", "postgresql"):
                if only in (None, "enrol"):
                    print(f"enrolment rate on {backend}…", flush=True)
                    url = await database(backend, workdir / f"bench-{backend}.db")
                    try:
                        await enrol_rate(url, plain.url, workdir, per_round, rounds, backend)
                    finally:
                        if backend == "postgresql":
                            await drop_pg_database(url)
                if only in (None, "scan"):
                    print(f"scan to first sale on {backend}…", flush=True)
                    url = await database(backend, workdir / "scan.db")
                    try:
                        await scan_to_sale(url, plain.url, workdir, rounds, backend)
                    finally:
                        if backend == "postgresql":
                            await drop_pg_database(url)
        finally:
            plain.kill()
    print()
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "provisioning.json",
        enrolments_per_round=per_round,
        concurrency=CONCURRENCY,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("enrol", "scan"), help="measure one of the two")
    add_rounds_argument(parser)
    args = parser.parse_args()
    asyncio.run(main(args.quick, Rounds("provisioning", rounds=args.rounds), args.only))
