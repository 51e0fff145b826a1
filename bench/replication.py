"""Replication benchmark: commit latency, lag, catch-up, ingest throughput, memory.

Runs against the real Mosquitto on 127.0.0.1:1883 and PostgreSQL on 127.0.0.1:5432, with the
control plane as its own process (``storefleet serve``), exactly as deployed. Every figure is
printed beside the ceiling it is compared with, measured in the same round. Each figure is
measured ``--rounds`` times (default 5, ``bench/rounds.py``) and reported as the median with its
spread, so one noisy round can neither hide nor fake a result; the offline ledgers the catch-up
and ingest figures drain are rung once and copied for each round. Writes
``bench/results/replication.json``.

    .venv/bin/python bench/replication.py [--quick] [--rounds N] [--only lag,ingest]
        [--profile DIR] [--no-fold]

``--only`` measures a subset of the figures (``commit``, ``lag``, ``catch-up``, ``ingest``), for
working on one of them; ``--profile DIR`` samples the control plane and this process (the
appliances' side) with py-spy (``--py-spy PATH``; installed apart, not a dependency of the
product) and writes one flame graph of each to DIR, to find where the time goes. The control
plane runs the reports' fold worker, as deployed (the rollups are folded off the ack path; the
lag figures say how soon after the last ack they held every record); ``--no-fold`` serves
without it, the baseline of what it costs the lag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiomqtt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.ingest.tables import journal
from control_plane.reports.rollup_tables import report_rollup_marks
from edge.ledger import Ledger
from edge.ledger.sales import journal_body
from edge.replication.replicator import LagObserver, ReplicationSettings, Replicator
from edge.simulated_register import RingSettings, random_sale, ring_sales
from mqttlink.heap import freeze_startup_heap
from protocols.broker_url import parse_broker_url
from protocols.journal_wire import batch_bytes, record_json
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, free_port

BROKER = ""  # set in main(): our own Mosquitto, configured from images/mosquitto
PHASES = ("commit", "lag", "catch-up", "ingest")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a process, from the kernel's own high-water mark."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- 1. commit latency ---------------------------------------------------------------------------


async def commit_latency(workdir: Path, n: int) -> dict[str, float]:
    """Each sale through the ledger, then the same rows raw, alternating so noise hits both."""
    rng = random.Random(1)
    drafts = [random_sale(rng, currency="EUR") for _ in range(n)]
    samples: list[float] = []
    raw: list[float] = []
    # the ceiling: the same rows (journal, sale, lines, tenders, receipt counter), raw sqlite3,
    # same pragmas, one transaction per sale, hash computed, no asyncio
    conn = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY, kind TEXT, ts INT, prev TEXT,"
        " hash TEXT, record TEXT);"
        "CREATE TABLE sales (id TEXT PRIMARY KEY, receipt INT, seq INT, total INT);"
        "CREATE TABLE lines (id TEXT, no INT, sku TEXT, qty TEXT, amount INT);"
        "CREATE TABLE tenders (id TEXT, no INT, kind TEXT, amount INT);"
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INT);"
    )
    prev = "0" * 64
    async with Ledger(workdir / "latency.db", register_id="1") as ledger:
        for seq, draft in enumerate(drafts, start=1):
            started = time.perf_counter()
            await ledger.record_sale(draft)
            samples.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            body = journal_body(draft, receipt_no=seq, register_id="1")
            digest, wire = record_json(
                seq=seq, kind="sale.completed", ts=0, prev_hash=prev, body=body
            )
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO counters VALUES ('receipt', 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1"
            )
            conn.execute(
                "INSERT INTO journal VALUES (?,?,?,?,?,?)", (seq, "sale", 0, prev, digest, wire)
            )
            conn.execute(
                "INSERT INTO sales VALUES (?,?,?,?)", (draft.sale_id, seq, seq, draft.total_minor)
            )
            conn.executemany(
                "INSERT INTO lines VALUES (?,?,?,?,?)",
                [
                    (draft.sale_id, i, line.sku, str(line.quantity), line.amount_minor)
                    for i, line in enumerate(draft.lines)
                ],
            )
            conn.executemany(
                "INSERT INTO tenders VALUES (?,?,?,?)",
                [(draft.sale_id, i, t.kind, t.amount_minor) for i, t in enumerate(draft.tenders)],
            )
            conn.execute("COMMIT")
            raw.append((time.perf_counter() - started) * 1000)
            prev = digest
    conn.close()
    return {
        "ledger_p50_ms": statistics.median(samples),
        "ledger_p99_ms": pct(samples, 0.99),
        "raw_p50_ms": statistics.median(raw),
        "raw_p99_ms": pct(raw, 0.99),
        "p99_ratio": pct(samples, 0.99) / pct(raw, 0.99),
    }


# -- infrastructure ------------------------------------------------------------------------------


#: ``storefleet serve`` with the reports' fold worker idle (``--no-fold``): the baseline of what
#: the worker costs the lag (the rollups are then folded by the first read instead).
SERVE_WITHOUT_FOLD = """
import asyncio, runpy, sys
from control_plane.reports import fold_worker
async def idle(self): await asyncio.Event().wait()
fold_worker.FoldWorker.run = idle
sys.argv = ["storefleet", "serve"]
runpy.run_module("control_plane.cli", run_name="__main__")
"""


def start_control_plane(database_url: str, port: int, *, fold: bool) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        STOREFLEET_CP_DATABASE_URL=database_url,
        STOREFLEET_CP_BROKER_URL=BROKER,
        STOREFLEET_CP_PORT=str(port),
    )
    command = ["-m", "control_plane.cli", "serve"] if fold else ["-c", SERVE_WITHOUT_FOLD]
    process = subprocess.Popen(
        [sys.executable, *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise RuntimeError("control plane did not start")


async def register(engine: AsyncEngine, device_ids: list[str]) -> None:
    tenant, store = f"bench-{uuid.uuid4().hex[:6]}", f"bench-{uuid.uuid4().hex[:6]}"
    await registry.create_tenant(engine, tenant_id=tenant, name="bench")
    await registry.create_store(engine, store_id=store, tenant_id=tenant, name="bench")
    for device_id in device_ids:
        await registry.register_device(engine, device_id=device_id, store_id=store)


async def total_hwm(engine: AsyncEngine, device_ids: list[str]) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.coalesce(func.sum(devices.c.hwm), 0)).where(
                        devices.c.id.in_(device_ids)
                    )
                )
            ).scalar_one()
        )


async def run_replicators(
    ledgers: dict[str, Ledger], observer: Callable[[str], LagObserver] | None = None
) -> list[asyncio.Task[None]]:
    tasks = []
    for device_id, ledger in ledgers.items():
        replicator = Replicator(
            ledger=ledger,
            device_id=device_id,
            broker=parse_broker_url(BROKER),
            settings=ReplicationSettings(ack_timeout=5),
            lag_observer=None if observer is None else observer(device_id),
        )
        tasks.append(asyncio.create_task(replicator.run(), name=device_id))
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- 2. lag, 3. catch-up, 4. throughput ----------------------------------------------------------


async def lag(
    engine: AsyncEngine, workdir: Path, seconds: float, *, fold: bool
) -> dict[str, float]:
    """Commit to ack at 3 devices x 20 sales/s, and the two halves of it per sale.

    The halves come from the cloud's own clock on the same machine: ``received_at`` of each
    journal row is when the ingest began storing its batch, so commit → stored-begins is the
    appliance's commit, its send, the broker and the cloud's decoding and queueing, and
    stored-begins → ack is the cloud's transaction, the ack's way back and the appliance reading
    it. The cloud's clock is in whole milliseconds, the halves are ±1 ms. With the fold worker
    running, also how long after the last ack its rollups held every record.
    """
    ids = [f"lag-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    await register(engine, ids)
    lags: list[float] = []
    arrived: dict[tuple[str, int], float] = {}
    ledgers = {i: Ledger(workdir / f"{i}.db", register_id="1") for i in ids}
    for ledger in ledgers.values():
        await ledger.open()

    def observer(device_id: str) -> LagObserver:
        def observe(seq: int, lag_s: float) -> None:
            lags.append(lag_s * 1000)
            arrived[(device_id, seq)] = time.time_ns() / 1e6

        return observe

    tasks = await run_replicators(ledgers, observer)
    await asyncio.sleep(1)
    count = int(20 * seconds)
    await asyncio.gather(
        *(
            ring_sales(ledger_, RingSettings(rate=20, count=count, seed=n))
            for n, ledger_ in enumerate(ledgers.values())
        )
    )
    deadline = time.monotonic() + 30
    while any(ledger_.backlog for ledger_ in ledgers.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    drained = time.monotonic()
    caught_up_ms = float("nan")  # the fold worker's rollups hold every record acked: how soon
    while fold and time.monotonic() < drained + 30:
        if await rollups_caught_up(engine, ids):
            caught_up_ms = (time.monotonic() - drained) * 1000
            break
        await asyncio.sleep(0.02)
    await stop(tasks)
    for ledger in ledgers.values():
        await ledger.close()
    to_cloud, in_cloud = [], []
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(journal.c.device_id, journal.c.seq, journal.c.ts, journal.c.received_at).where(
                journal.c.device_id.in_(ids)
            )
        )
        for device_id, seq, ts, received_at in rows:
            acked = arrived.get((device_id, seq))
            if acked is not None:
                to_cloud.append(float(received_at - ts))
                in_cloud.append(acked - received_at)
    return {
        "sales": len(lags),
        "p50_ms": statistics.median(lags),
        "p99_ms": pct(lags, 0.99),
        "max_ms": max(lags),
        "to_cloud_p50_ms": statistics.median(to_cloud),
        "to_cloud_p99_ms": pct(to_cloud, 0.99),
        "in_cloud_p50_ms": statistics.median(in_cloud),
        "in_cloud_p99_ms": pct(in_cloud, 0.99),
        "rollups_caught_up_ms": caught_up_ms,
    }


async def rollups_caught_up(engine: AsyncEngine, device_ids: list[str]) -> bool:
    """Every device's rollup mark has reached its high-water mark."""
    marks = report_rollup_marks
    async with engine.connect() as conn:
        behind = await conn.scalar(
            select(func.count())
            .select_from(devices)
            .outerjoin(marks, marks.c.device_id == devices.c.id)
            .where(
                devices.c.id.in_(device_ids),
                devices.c.hwm > func.coalesce(marks.c.upto_seq, 0),
            )
        )
    return behind == 0


async def fill(path: Path, count: int, seed: int) -> Path:
    """An offline register's ledger with `count` unsent sales, closed, to be copied per round."""
    ledger = Ledger(path, register_id="1")
    await ledger.open()
    await ring_sales(ledger, RingSettings(rate=0, count=count, seed=seed))
    await ledger.close()
    return path


async def copy_of(template: Path, path: Path) -> Ledger:
    """An open ledger that starts as `template` (the journal does not name its device)."""
    for suffix in ("", "-wal"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, path.with_name(path.name + suffix))
    ledger = Ledger(path, register_id="1")
    await ledger.open()
    return ledger


async def catch_up(
    engine: AsyncEngine, workdir: Path, template: Path, count: int
) -> dict[str, float]:
    device_id = f"catchup-{uuid.uuid4().hex[:6]}"
    await register(engine, [device_id])
    ledger = await copy_of(template, workdir / f"{device_id}.db")
    started = time.perf_counter()
    tasks = await run_replicators({device_id: ledger})
    while ledger.backlog:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    await stop(tasks)
    await ledger.close()
    return {"sales": count, "seconds": elapsed, "sales_per_s": count / elapsed}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (``/proc/PID/stat``, clock ticks).

    Why beside the rate: on a shared machine the rate falls with the load, but the CPU the
    control plane spends per sale hardly moves, so an A/B under load still compares code.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(
    engine: AsyncEngine, workdir: Path, templates: list[Path], per_device: int, cloud_pid: int
) -> dict[str, float]:
    devices_n = len(templates)
    ids = [f"tp-{n:02d}-{uuid.uuid4().hex[:4]}" for n in range(devices_n)]
    await register(engine, ids)
    ledgers = {
        i: await copy_of(template, workdir / f"{i}.db")
        for i, template in zip(ids, templates, strict=True)
    }
    total = devices_n * per_device
    started, cpu_started = time.perf_counter(), cpu_seconds(cloud_pid)
    tasks = await run_replicators(ledgers)
    while await total_hwm(engine, ids) < total:
        await asyncio.sleep(0.05)
    elapsed, cloud_cpu = time.perf_counter() - started, cpu_seconds(cloud_pid) - cpu_started
    await stop(tasks)

    # the ceiling: raw Mosquitto publish -> subscribe of the same payloads, no storage at all
    payloads = []
    for device_id, ledger in ledgers.items():
        records = [r.record for r in await ledger.read_records(1, per_device)]
        for start in range(0, len(records), 500):
            payloads.append(
                (
                    device_id,
                    batch_bytes(records[start : start + 500], sent_at=0),
                    len(records[start : start + 500]),
                )
            )
        await ledger.close()
    received = 0
    done = asyncio.Event()
    async with (
        aiomqtt.Client(
            "127.0.0.1",
            parse_broker_url(BROKER).port,
            identifier=f"bench-sub-{uuid.uuid4().hex[:6]}",
        ) as sub,
        aiomqtt.Client(
            "127.0.0.1",
            parse_broker_url(BROKER).port,
            identifier=f"bench-pub-{uuid.uuid4().hex[:6]}",
        ) as pub,
    ):
        topic_root = f"bench/{uuid.uuid4().hex[:6]}"
        await sub.subscribe(f"{topic_root}/#", qos=1)

        async def consume() -> None:
            nonlocal received
            async for message in sub.messages:
                received += len(json.loads(message.payload)["records"])
                if received >= total:
                    done.set()
                    return

        consumer = asyncio.create_task(consume())
        raw_started = time.perf_counter()
        for device_id, payload, _n in payloads:
            await pub.publish(f"{topic_root}/{device_id}", payload, qos=1)
        await done.wait()
        raw_elapsed = time.perf_counter() - raw_started
        consumer.cancel()
    return {
        "devices": devices_n,
        "sales": total,
        "seconds": elapsed,
        "sales_per_s": total / elapsed,
        "cloud_cpu_ms_per_1000": 1e6 * cloud_cpu / total,
        "raw_mqtt_sales_per_s": total / raw_elapsed,
    }


async def appliance_rss(workdir: Path, seconds: float) -> float:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "appliance",
            "--device-id",
            "rss-probe",
            "--ledger",
            str(workdir / "rss.db"),
            "--broker-url",
            BROKER,
            "--rate",
            "20",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    await asyncio.sleep(seconds)
    peak = vm_hwm_mb(process.pid)
    process.terminate()
    process.wait(10)
    return peak


class Profiler:
    """py-spy sampling processes (``--profile``): one flame graph per profiled process.

    Why py-spy: it samples from outside, so the control plane runs exactly as deployed, and it
    is not a dependency of the product (installed apart, e.g. ``pip install --target``).
    """

    def __init__(self, py_spy: str | None, outdir: Path | None, fmt: str = "flamegraph") -> None:
        self.py_spy, self.outdir, self.format = py_spy, outdir, fmt
        self.processes: list[subprocess.Popen[bytes]] = []

    def attach(self, pid: int, name: str) -> None:
        """Sample ``pid`` until :meth:`stop`; writes ``DIR/name.svg`` (``.txt``: raw stacks)."""
        if self.py_spy is None or self.outdir is None:
            return
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.processes.append(
            subprocess.Popen(
                [
                    self.py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--format",
                    self.format,
                    "--output",
                    str(self.outdir / f"{name}.{'svg' if self.format == 'flamegraph' else 'txt'}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def stop(self) -> None:
        """Stop sampling (SIGINT makes py-spy write its file) and say where the files are."""
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            process.wait(60)
        if self.processes:
            print(f"profiles in {self.outdir}")


async def main(
    quick: bool,
    rounds: Rounds,
    phases: set[str],
    profiler: Profiler,
    *,
    rss_during_lag: bool,
    fold: bool,
) -> None:
    global BROKER
    per_device, catch_up_sales = (400 if quick else 2000), 10_000
    details: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir)
        broker.start()
        BROKER = broker.url
        print("ringing the offline ledgers (once, copied for each round)…", flush=True)
        templates = workdir / "templates"
        templates.mkdir()
        offline = templates / "catch-up.db"
        if "catch-up" in phases:
            await fill(offline, catch_up_sales, seed=7)
        fleet = [templates / f"tp-{n:02d}.db" for n in range(50)]
        if "ingest" in phases:
            for n, path in enumerate(fleet):
                await fill(path, per_device, seed=n)
        database_url = await create_pg_database()
        engine = make_engine(database_url)
        await migrate(engine)
        control_plane = start_control_plane(database_url, free_port(), fold=fold)
        profiler.attach(control_plane.pid, "control-plane")
        profiler.attach(os.getpid(), "appliances")
        # the appliances' process has started, as an appliance's has when it sells: its heap
        # is frozen now (the replicator would do it at its first start, inside a measurement)
        freeze_startup_heap()
        try:
            for number in rounds.each():
                here = workdir / f"round-{number}"
                here.mkdir()
                detail: dict[str, object] = {}
                if "commit" in phases:
                    c = await commit_latency(here, 500 if quick else 3000)
                    record_commit(rounds, c)
                    detail["commit_latency"] = c
                if "lag" in phases:
                    # the RSS probe (a fourth appliance, its device unregistered) runs on its own
                    # unless asked: starting up beside the three whose lag is measured, it took
                    # CPU from them and from the control plane inside the lag window
                    rss_probe = asyncio.create_task(appliance_rss(here, 5 if quick else 15))
                    if not rss_during_lag:
                        await asyncio.wait([rss_probe])
                    lag_ = await lag(engine, here, 5 if quick else 20, fold=fold)
                    appliance_mb = await rss_probe
                    record_lag(rounds, lag_, appliance_mb)
                    detail["lag_3x20"] = lag_
                if "catch-up" in phases:
                    u = await catch_up(engine, here, offline, catch_up_sales)
                    record_catch_up(rounds, u)
                    detail["catch_up"] = u
                if "ingest" in phases:
                    t = await throughput(engine, here, fleet, per_device, control_plane.pid)
                    record_ingest(rounds, t)
                    detail["ingest_50_devices"] = t
                details.append(detail)
            rounds.add(
                "control_plane_peak_rss_mb",
                vm_hwm_mb(control_plane.pid),
                label="peak RSS control plane (all rounds)",
                unit="MB",
                digits=0,
            )
        finally:
            profiler.stop()
            control_plane.terminate()
            control_plane.wait(10)
            await engine.dispose()
            await drop_pg_database(database_url)
            broker.kill()
    print()
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "replication.json", per_round=details, fold_worker=fold
    )


# -- each round's figures, each beside the ceiling measured in the same round --------------------


def record_commit(rounds: Rounds, c: dict[str, float]) -> None:
    rounds.add(
        "commit_p50_ms",
        c["ledger_p50_ms"],
        label="sale commit p50 (sync=FULL)",
        unit="ms",
        digits=2,
    )
    rounds.add("commit_raw_p50_ms", c["raw_p50_ms"], label="  raw insert p50", unit="ms", digits=2)
    rounds.add(
        "commit_p99_ms",
        c["ledger_p99_ms"],
        label="sale commit p99 (sync=FULL)",
        unit="ms",
        digits=2,
    )
    rounds.add("commit_raw_p99_ms", c["raw_p99_ms"], label="  raw insert p99", unit="ms", digits=2)
    rounds.add(
        "commit_p99_ratio",
        c["p99_ratio"],
        label="  commit p99 / raw insert p99",
        goal=Goal("<=", 2),
        digits=2,
    )


def record_lag(rounds: Rounds, lag_: dict[str, float], appliance_mb: float) -> None:
    rounds.add("lag_p50_ms", lag_["p50_ms"], label="lag 3 dev x 20/s p50", unit="ms")
    rounds.add(
        "lag_p99_ms", lag_["p99_ms"], label="lag 3 dev x 20/s p99", unit="ms", goal=Goal("<", 20)
    )
    rounds.add("lag_max_ms", lag_["max_ms"], label="lag 3 dev x 20/s max", unit="ms")
    rounds.add(
        "lag_to_cloud_p50_ms", lag_["to_cloud_p50_ms"], label="  commit → cloud p50", unit="ms"
    )
    rounds.add(
        "lag_to_cloud_p99_ms", lag_["to_cloud_p99_ms"], label="  commit → cloud p99", unit="ms"
    )
    rounds.add("lag_in_cloud_p50_ms", lag_["in_cloud_p50_ms"], label="  cloud → ack p50", unit="ms")
    rounds.add("lag_in_cloud_p99_ms", lag_["in_cloud_p99_ms"], label="  cloud → ack p99", unit="ms")
    if lag_["rollups_caught_up_ms"] == lag_["rollups_caught_up_ms"]:  # not NaN: the worker ran
        rounds.add(
            "lag_rollups_caught_up_ms",
            lag_["rollups_caught_up_ms"],
            label="  rollups caught up after the last ack",
            unit="ms",
            digits=0,
        )
    rounds.add(
        "appliance_peak_rss_mb", appliance_mb, label="peak RSS appliance", unit="MB", digits=0
    )


def record_catch_up(rounds: Rounds, u: dict[str, float]) -> None:
    rounds.add(
        "catch_up_s",
        u["seconds"],
        label=f"catch-up {u['sales']:,.0f} offline",
        unit="s",
        goal=Goal("<", 3),
        digits=2,
    )
    rounds.add(
        "catch_up_per_s", u["sales_per_s"], label="  catch-up rate", unit="sales/s", digits=0
    )


def record_ingest(rounds: Rounds, t: dict[str, float]) -> None:
    rounds.add(
        "ingest_per_s",
        t["sales_per_s"],
        label=f"ingest, {t['devices']:.0f} devices draining {t['sales']:,.0f}",
        unit="sales/s",
        goal=Goal(">=", 10_000),
        digits=0,
    )
    rounds.add(
        "ingest_cloud_cpu_ms_per_1000",
        t["cloud_cpu_ms_per_1000"],
        label="  control plane CPU per 1,000 sales",
        unit="ms",
        digits=0,
    )
    rounds.add(
        "raw_mqtt_per_s",
        t["raw_mqtt_sales_per_s"],
        label="  raw MQTT, same payloads",
        unit="sales/s",
        digits=0,
    )


def _phases(text: str) -> set[str]:
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = chosen - set(PHASES)
    if unknown or not chosen:
        msg = f"--only takes a comma-separated subset of {', '.join(PHASES)}, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return chosen


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument(
        "--only", type=_phases, default=set(PHASES), help="comma-separated: " + ",".join(PHASES)
    )
    parser.add_argument(
        "--rss-during-lag",
        action="store_true",
        help="probe the appliance's RSS while the lag is measured (as before; for comparison)",
    )
    parser.add_argument("--profile", type=Path, help="write py-spy flame graphs to this folder")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy to use")
    parser.add_argument(
        "--profile-format",
        choices=("flamegraph", "raw"),
        default="flamegraph",
        help="raw: collapsed stacks as text (one line per stack and its samples), to grep",
    )
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="serve without the reports' fold worker: the baseline of its cost on the lag",
    )
    add_rounds_argument(parser)
    args = parser.parse_args()
    if args.profile is not None and args.py_spy is None:
        parser.error("--profile needs py-spy: install it apart and give --py-spy PATH")
    asyncio.run(
        main(
            args.quick,
            Rounds("replication", rounds=args.rounds),
            args.only,
            Profiler(args.py_spy, args.profile, args.profile_format),
            rss_during_lag=args.rss_during_lag,
            fold=not args.no_fold,
        )
    )
