"""Flood benchmark: the control plane under a flood of malformed MQTT messages.

The control plane runs as its own process (``storefleet serve``) against a private, real Mosquitto
(configured from images/mosquitto) and a fresh PostgreSQL database (or SQLite with ``--sqlite``).
A few devices are registered, then ~5,000 malformed messages of many kinds are published as fast
as the broker takes them on every upstream channel of the contract: not JSON, wrong schema or
version, payloads beyond and just under a channel's size limit, deep nesting, wrong-typed state,
command results with floats, out-of-range counters, unknown devices. Reported: the process's RSS
before, at peak (the kernel's high-water mark) and after the flood has drained, how many lines it
logged, how many of them were tracebacks, and the drop counters it exported. Writes
``bench/results/flood.json``.

    .venv/bin/python bench/flood.py [--messages 5000] [--sqlite] [--rounds N]

Each round floods a fresh control plane (``bench/rounds.py``: median and spread of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from protocols.topics import Channel, device_topic
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, free_port

MB = 1024 * 1024
ACCESS = re.compile(r' - "(GET|POST|HEAD) ')  # uvicorn's access log line
DEVICES = [f"flood-{number}" for number in range(4)]


def _state(peripheral: dict[str, object]) -> bytes:
    return json.dumps(
        {"schema": "sf.state", "v": 1, "peripherals": {"receipt-printer": peripheral}}
    ).encode()


def _well_formed_batch() -> bytes:
    """A batch that decodes (2,000 consecutive records, hex hashes) but continues no chain."""
    records = [
        {
            "seq": seq,
            "kind": "sale.completed",
            "ts": 1,
            "prev_hash": "0" * 64,
            "hash": "1" * 64,
            "body": {"pad": "x" * 1800},
        }
        for seq in range(10**9, 10**9 + 2000)
    ]
    return json.dumps({"schema": "sf.journal", "v": 1, "records": records}).encode()


#: name -> (channel, payload maker(index)); the flood cycles through them, big ones rarer.
SMALL: dict[str, tuple[Channel, Callable[[int], bytes]]] = {
    "journal-not-json": (Channel.JOURNAL, lambda i: b"{not json %d" % i),
    "journal-wrong-version": (
        Channel.JOURNAL,
        lambda i: b'{"schema":"sf.journal","v":9,"records":[]}',
    ),
    "journal-bad-record": (
        Channel.JOURNAL,
        lambda i: b'{"schema":"sf.journal","v":1,"records":[{"seq":0,"kind":%d}]}' % i,
    ),
    "journal-float": (
        Channel.JOURNAL,
        lambda i: b'{"schema":"sf.journal","v":1,"records":[{"seq":1.5}]}',
    ),
    "state-last-seen-string": (Channel.STATE, lambda i: _state({"last_seen": f"yesterday {i}"})),
    "state-last-seen-1e400": (
        Channel.STATE,
        lambda i: b'{"schema":"sf.state","v":1,"peripherals":{"p":{"last_seen":1e400}}}',
    ),
    "state-counters-strings": (Channel.STATE, lambda i: _state({"counters": {"jobs": str(i)}})),
    "state-list-for-object": (Channel.STATE, lambda i: _state({"detail": [i, i]})),
    "state-nan": (Channel.STATE, lambda i: b'{"schema":"sf.state","v":1,"config_version":NaN}'),
    "state-nul-in-slot": (
        Channel.STATE,
        lambda i: b'{"schema":"sf.state","v":1,"slot":"a\\u0000%d"}' % i,
    ),
    "state-release-over-its-column": (
        Channel.STATE,
        lambda i: b'{"schema":"sf.state","v":1,"app_release":"%s"}' % (b"r" * 300),
    ),
    "status-wrong-type": (
        Channel.STATUS,
        lambda i: b'{"schema":"sf.status","v":1,"state":"online","versions":[%d]}' % i,
    ),
    "telemetry-huge-int": (
        Channel.TELEMETRY,
        lambda i: b'{"schema":"sf.telemetry","v":1,"ts":1,"backlog":%d}' % (2**70 + i),
    ),
    "telemetry-string": (
        Channel.TELEMETRY,
        lambda i: b'{"schema":"sf.telemetry","v":1,"ts":"now"}',
    ),
    "result-float": (
        Channel.CMD_RESULT,
        lambda i: (
            b'{"schema":"sf.cmd.result","v":1,"id":"x%d","ok":true,"result":{"job_id":1.5}}' % i
        ),
    ),
    "result-not-object": (Channel.CMD_RESULT, lambda i: b"[1, 2, 3]"),
    "deep-nesting": (Channel.STATE, lambda i: b'{"a":' * 20_000),
}
BIG: dict[str, tuple[Channel, Callable[[int], bytes]]] = {
    "journal-over-limit-5MB": (Channel.JOURNAL, lambda i: b"x" * (5 * MB)),
    "journal-under-limit-3.9MB-garbage": (Channel.JOURNAL, lambda i: b"[" * (3 * MB + 900_000)),
    "journal-under-limit-3MB-json": (
        Channel.JOURNAL,
        lambda i: json.dumps(
            {"schema": "sf.journal", "v": 1, "records": [{"seq": n} for n in range(250_000)]}
        ).encode(),
    ),
    "journal-well-formed-3.9MB": (Channel.JOURNAL, lambda i: _well_formed_batch()),
    "state-over-limit-1MB": (Channel.STATE, lambda i: b" " * MB),
    "result-over-limit-1MB": (Channel.CMD_RESULT, lambda i: b"{" * MB),
}


def plan(total: int) -> list[tuple[str, Channel, int]]:
    """Which kind each message is: one big one in every 20."""
    small, big = list(SMALL), list(BIG)
    kinds: list[tuple[str, Channel, int]] = []
    for index in range(total):
        if index % 20 == 19:
            name = big[(index // 20) % len(big)]
            kinds.append((name, BIG[name][0], index))
        else:
            name = small[index % len(small)]
            kinds.append((name, SMALL[name][0], index))
    return kinds


def payload(name: str, index: int, cache: dict[str, bytes]) -> bytes:
    if name in BIG:  # made once: the publisher should not be the bottleneck
        if name not in cache:
            cache[name] = BIG[name][1](index)
        return cache[name]
    return SMALL[name][1](index)


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a process, from the kernel's own high-water mark."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dropped(metrics_text: str) -> dict[str, float]:
    """The ``storefleet_ingest_messages_dropped_total`` samples by reason."""
    out: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("storefleet_ingest_messages_dropped_total{"):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(value)
    return out


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("control plane exited at start")
            try:
                answer = await client.get("/healthz")
                if answer.status_code == 200 and answer.json().get("ingest_connected"):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("control plane did not connect to the broker in time")


async def publish_flood(broker_port: int, kinds: list[tuple[str, Channel, int]]) -> float:
    """Publish every message at QoS 1 from four clients; returns seconds taken."""
    cache: dict[str, bytes] = {}
    started = time.perf_counter()

    async def one_client(number: int) -> None:
        async with aiomqtt.Client(
            "127.0.0.1", broker_port, identifier=f"flood-{number}-{uuid.uuid4().hex[:6]}"
        ) as client:
            for name, channel, index in kinds[number::4]:
                device = DEVICES[index % len(DEVICES)] if index % 3 else f"stranger-{index % 50}"
                await client.publish(
                    device_topic(device, channel), payload(name, index, cache), qos=1
                )

    async with asyncio.TaskGroup() as tasks:
        for number in range(4):
            tasks.create_task(one_client(number))
    return time.perf_counter() - started


async def run(total: int, *, sqlite: bool, workdir: Path) -> dict[str, object]:
    mosquitto = Mosquitto(workdir)
    mosquitto.start()
    database_url = (
        f"sqlite+aiosqlite:///{workdir / 'cloud.db'}" if sqlite else await create_pg_database()
    )
    engine = make_engine(database_url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id="flood-t", name="Flood")
    await registry.create_store(engine, store_id="flood-s", tenant_id="flood-t", name="Flood")
    for device in DEVICES:
        await registry.register_device(engine, device_id=device, store_id="flood-s")
    await engine.dispose()

    port = free_port()
    log_path = workdir / "control-plane.log"
    env = {
        **os.environ,
        "STOREFLEET_CP_DATABASE_URL": database_url,
        "STOREFLEET_CP_BROKER_URL": mosquitto.url,
        "STOREFLEET_CP_PORT": str(port),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, process)
        await asyncio.sleep(1)
        lines_before = len(log_path.read_bytes().splitlines())
        before = rss_mb(process.pid)
        kinds = plan(total)
        samples: list[float] = []
        publishing = asyncio.create_task(publish_flood(mosquitto.port, kinds))
        async with httpx.AsyncClient(base_url=base, timeout=10, follow_redirects=True) as client:
            while not publishing.done():
                samples.append(rss_mb(process.pid))
                await asyncio.sleep(0.05)
            seconds = await publishing
            # drained: the drop counters stop moving for 3 s
            last: dict[str, float] = {}
            quiet_since = time.monotonic()
            drain_deadline = time.monotonic() + 300
            while time.monotonic() - quiet_since < 3 and time.monotonic() < drain_deadline:
                samples.append(rss_mb(process.pid))
                now = dropped((await client.get("/metrics")).text)
                if now != last:
                    last, quiet_since = now, time.monotonic()
                await asyncio.sleep(0.2)
            await asyncio.sleep(12)  # past the drop log's 10 s interval: its tally and trim
            after = rss_mb(process.pid)
            health = (await client.get("/healthz")).json()
        peak = max(vm_hwm_mb(process.pid), *samples)
        text = log_path.read_bytes().decode(errors="replace").splitlines()[lines_before:]
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        mosquitto.kill()
        if not sqlite:
            await drop_pg_database(database_url)
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "store": "sqlite" if sqlite else "postgresql",
        "messages": total,
        "kinds": dict(Counter(name for name, _, _ in kinds)),
        "bytes_published_mb": round(
            sum(len(payload(name, index, {})) for name, _, index in kinds) / MB, 1
        ),
        "publish_seconds": round(seconds, 2),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_after_mb": round(after, 1),
        "lines_logged": len(text),
        # the bench's own polling of /metrics and /healthz shows in uvicorn's access log
        "lines_logged_without_access_log": sum(1 for line in text if not ACCESS.search(line)),
        "tracebacks": sum(1 for line in text if line.startswith("Traceback")),
        "dropped_by_reason": last,
        "dropped_total": sum(last.values()),
        "alive_after": process.returncode is None or process.returncode in (0, -15),
        "healthz_after": health,
        "log_sample": text[:12],
    }


def report(results: dict[str, object]) -> None:
    rows = [
        ("messages published", f"{results['messages']} ({results['bytes_published_mb']} MB)"),
        ("publish time", f"{results['publish_seconds']} s"),
        ("RSS before", f"{results['rss_before_mb']} MB"),
        ("RSS peak", f"{results['rss_peak_mb']} MB"),
        ("RSS after drain", f"{results['rss_after_mb']} MB"),
        (
            "lines logged",
            f"{results['lines_logged_without_access_log']} "
            f"(+{int(results['lines_logged']) - int(results['lines_logged_without_access_log'])} "  # type: ignore[call-overload]
            "access log of the bench's polling)",
        ),
        ("tracebacks", str(results["tracebacks"])),
        ("dropped (counted)", f"{results['dropped_total']:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"flood of malformed messages · {results['store']} · {results['machine']}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for reason, count in sorted(dict(results["dropped_by_reason"]).items()):  # type: ignore[call-overload]
        print(f"    dropped {reason:<{width - 4}}  {count:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "flood.json")
    add_rounds_argument(parser)
    args = parser.parse_args()
    rounds = Rounds("flood", rounds=args.rounds)
    per_round = []
    for _ in rounds.each():  # each round floods a fresh control plane, broker and database
        with tempfile.TemporaryDirectory(prefix="sf-flood-") as workdir:
            results = asyncio.run(run(args.messages, sqlite=args.sqlite, workdir=Path(workdir)))
        report(results)
        record(rounds, results)
        per_round.append(results)
    print()
    print(rounds.table())
    rounds.write(args.out, per_round=per_round)


def record(rounds: Rounds, results: dict[str, object]) -> None:
    """One round's figures; the issue asks for no traceback and a process that lives on."""
    figures: list[tuple[str, str, str, Goal | None]] = [
        ("publish_seconds", "publish time", "s", None),
        ("rss_before_mb", "RSS before", "MB", None),
        ("rss_peak_mb", "RSS peak", "MB", None),
        ("rss_after_mb", "RSS after drain", "MB", None),
        ("lines_logged_without_access_log", "lines logged (no access log)", "", None),
        ("tracebacks", "tracebacks", "", Goal("<=", 0)),
        ("dropped_total", "dropped (counted)", "", None),
        ("alive_after", "alive after the flood (1 = yes)", "", Goal(">=", 1)),
    ]
    for key, label, unit, goal in figures:
        value = results[key]
        assert isinstance(value, int | float), (key, value)
        rounds.add(key, float(value), label=label, unit=unit, goal=goal, digits=1 if unit else 0)


if __name__ == "__main__":
    main()
