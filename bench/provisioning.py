"""Provisioning benchmark: enrolments per second through the API, QR scan to first sale.

* Enrolment rate: the control plane runs as its own process (``storefleet serve``, SQLite and
  PostgreSQL), a pool of enrolments is created through the API, and every CSR is generated
  before the clock starts, so the figure is the server's: claim, registry insert, signing and
  the SQL ledger, per ``POST /api/enrol``. Goal >= 200/s. Three rounds; the median is reported.
* Scan to first sale: one appliance, from decoding the QR PNG (what the scanner does) through
  enrolment, mTLS connect to a Mosquitto configured from images/mosquitto, ringing one sale,
  to that sale stored in the cloud by an ingest worker on its own mTLS identity. Goal < 10 s.
  Five runs, median and max.

    .venv/bin/python bench/provisioning.py [--quick]

Writes ``bench/results/provisioning.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import statistics
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

from control_plane.db.tables import sales
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.provisioning.mqtt_identity import ensure_control_plane_identity
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
from tests.harness.services import (
    Mosquitto,
    create_pg_database,
    drop_pg_database,
    free_port,
    port_open,
)

CONCURRENCY = 32


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from the kernel."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_control_plane(
    *, database_url: str, broker_url: str, ca_dir: Path, port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STOREFLEET_CP_DATABASE_URL": database_url,
        "STOREFLEET_CP_BROKER_URL": broker_url,
        "STOREFLEET_CP_PORT": str(port),
        "STOREFLEET_CA_DIRECTORY": str(ca_dir),
        "STOREFLEET_CA_PASSPHRASE": PASSPHRASE,
        "STOREFLEET_CA_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "control_plane.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while not port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("control plane did not start")
        time.sleep(0.05)
    return process


async def enrol_rate(
    database_url: str, broker_url: str, workdir: Path, per_round: int, rounds: int
) -> dict[str, object]:
    ca = make_ca(workdir / f"ca-{time.monotonic_ns()}")
    port = free_port()
    process = start_control_plane(
        database_url=database_url, broker_url=broker_url, ca_dir=ca.directory, port=port
    )
    base = f"http://127.0.0.1:{port}"
    rates: list[float] = []
    create_rates: list[float] = []
    cpu_ms: list[float] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as api:
            await api.post("/api/tenants", json={"id": TENANT, "name": "Acme"})
            await api.post("/api/stores", json={"id": STORE, "tenant_id": TENANT, "name": "HQ"})
            warm = await api.get("/api/ca.pem")  # opens the CA (key decryption) before timing
            assert warm.status_code == 200, warm.text
            for _ in range(rounds):
                body = {"tenant_id": TENANT, "store_id": STORE, "created_by": "bench"}
                started = time.perf_counter()
                created = await _gather(
                    [api.post("/api/enrolments", json=body) for _ in range(per_round)]
                )
                create_rates.append(per_round / (time.perf_counter() - started))
                tokens = [c.json()["qr_text"].split("t=")[1].split("&")[0] for c in created]
                csrs = [
                    build_csr(generate_private_key(), common_name="bench").decode() for _ in tokens
                ]
                started, cpu = time.perf_counter(), cpu_seconds(process.pid)
                answers = await _gather(
                    [
                        api.post("/api/enrol", json={"token": t, "csr_pem": c})
                        for t, c in zip(tokens, csrs, strict=True)
                    ]
                )
                rates.append(per_round / (time.perf_counter() - started))
                cpu_ms.append((cpu_seconds(process.pid) - cpu) * 1000 / per_round)
                failed = [a.text for a in answers if a.status_code != 200]
                assert not failed, failed[:3]
    finally:
        process.terminate()
        process.wait(10)
    return {
        "enrolments": per_round * rounds,
        "concurrency": CONCURRENCY,
        "enrol_per_s_median": statistics.median(rates),
        "enrol_per_s_rounds": rates,
        "create_per_s_median": statistics.median(create_rates),
        "server_cpu_ms_per_enrol_median": statistics.median(cpu_ms),
    }


async def _gather(requests: list) -> list[httpx.Response]:  # type: ignore[type-arg]
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(request) -> httpx.Response:  # type: ignore[no-untyped-def]
        async with semaphore:
            return await request

    return await asyncio.gather(*(one(r) for r in requests))


async def scan_to_sale(database_url: str, broker_url: str, workdir: Path, runs: int) -> dict:  # type: ignore[type-arg]
    ca = make_ca(workdir / f"ca-scan-{time.monotonic_ns()}")
    broker = MtlsBroker(workdir / f"mtls-{time.monotonic_ns()}", ca=ca)
    broker.start()
    seconds: list[float] = []
    try:
        async with served_fleet(
            database_url=database_url,
            ingest_broker_url=broker_url,
            ca_directory=ca.directory,
            device_broker_url=broker.url,
        ) as fleet:
            worker = IngestWorker(
                engine=fleet.engine,
                broker=parse_broker_url(broker.url),
                settings=IngestSettings(shared_subscription=True, partitions=2),
                tls_context=ensure_control_plane_identity(ca, workdir / "cp-identity"),
            )
            ingest = asyncio.create_task(worker.run())
            async with asyncio.timeout(20):
                await worker.connected.wait()
            for run in range(runs):
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
                    seconds.append(time.perf_counter() - started)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            ingest.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ingest
    finally:
        broker.stop()
    return {"runs": runs, "median_s": statistics.median(seconds), "max_s": max(seconds)}


async def main(quick: bool) -> None:
    results: dict[str, object] = {
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    per_round, rounds = (200, 3) if quick else (1000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        plain = Mosquitto(workdir)
        plain.start()
        try:
            for backend in ("sqlite", "postgresql"):
                if backend == "sqlite":
                    url = f"sqlite+aiosqlite:///{workdir / f'bench-{backend}.db'}"
                else:
                    url = await create_pg_database()
                print(f"enrolment rate on {backend}…", flush=True)
                try:
                    results[f"enrol_{backend}"] = await enrol_rate(
                        url, plain.url, workdir, per_round, rounds
                    )
                finally:
                    if backend == "postgresql":
                        await drop_pg_database(url)
                if backend == "sqlite":
                    url = f"sqlite+aiosqlite:///{workdir / 'scan.db'}"
                else:
                    url = await create_pg_database()
                print(f"scan to first sale on {backend}…", flush=True)
                try:
                    results[f"scan_to_sale_{backend}"] = await scan_to_sale(
                        url, plain.url, workdir, 3 if quick else 5
                    )
                finally:
                    if backend == "postgresql":
                        await drop_pg_database(url)
        finally:
            plain.kill()
    report(results)
    out = ROOT / "bench" / "results" / "provisioning.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


def report(r: dict) -> None:  # type: ignore[type-arg]
    rows = []
    for backend in ("sqlite", "postgresql"):
        e, s = r[f"enrol_{backend}"], r[f"scan_to_sale_{backend}"]
        rows.append(
            (
                f"POST /api/enrol ({backend})",
                f"{e['enrol_per_s_median']:.0f} /s",
                f"server CPU {e['server_cpu_ms_per_enrol_median']:.1f} ms each, "
                f"{e['concurrency']} in flight",
                "goal >= 200/s",
            )
        )
        rows.append(
            (
                f"QR scan -> first sale ({backend})",
                f"{s['median_s']:.2f} s",
                f"max {s['max_s']:.2f} s over {s['runs']}",
                "goal < 10 s",
            )
        )
    width = max(len(row[0]) for row in rows)
    print(f"\n{'figure':<{width}}  {'median':>10}  {'beside':<36}  goal")
    for name, value, beside, goal in rows:
        print(f"{name:<{width}}  {value:>10}  {beside:<36}  {goal}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
