"""Appliance benchmark: the fleet agent starting and restarting a real register, and their memory.

Run: .venv/bin/python bench/appliance.py [--rounds N] — prints a table and writes
bench/results/appliance.json.

Each round is a fresh appliance (its own data directory and device id) on the Mosquitto at
127.0.0.1:1883, whose register has a 100,000-item catalog (generated as bench/checkout.py does):

* first start → ready: the agent is started as the service starts it (``python -m edge.agent``)
  on a new data directory; the figure is the time until its register answers ``/healthz`` with
  200 (ready to sell: kiosk serving, ledger caught up, catalog open). This first start also
  stores the 100,000-item snapshot into ``catalog.db`` and parses python-escpos's printer
  database into the data directory's cache, once, as a new appliance does.
* start → ready: the agent is stopped (SIGTERM, as systemd does) and started again — a reboot, an
  update: the register opens the catalog it stored, it parses nothing.
* agent RSS and register RSS, once the register is ready (psutil, whole resident set).
* SIGKILL → ready: the register is killed with SIGKILL; the time until a new one answers
  ``/healthz`` with 200.
* register CPU to ready (no goal): the CPU seconds the register process used until it was
  ready, at each start. On a machine busy with other work the wall times above stretch while
  this does not: it is what a start costs on a quiet machine.

Goals (issue 10): start → ready < 3 s, SIGKILL → ready < 3 s, agent RSS < 40 MB, register RSS
with 100,000 items < 150 MB. Medians of the rounds with their spread (bench/rounds.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from edge.checkout.barcodes import gs1_check_digit
from edge.pos.store_config import DEMO_STORE

N_ITEMS = 100_000
BROKER = "mqtt://127.0.0.1:1883"
POLL_S = 0.02
LIMIT_S = 300.0  # a round that takes longer than this failed (a first start on a busy machine)


def catalog_100k(path: Path) -> None:
    """The 100,000-item snapshot bench/checkout.py loads."""

    def gtin13(n: int) -> str:
        body = f"76{n:010d}"
        return body + str(gs1_check_digit(body))

    items = [
        {
            "id": f"item-{n}",
            "name": f"Product {n}",
            "price_minor": 100 + n % 5000,
            "tax_class": "A" if n % 4 else "B",
            "department": f"dept-{n % 40}",
            "gtins": [gtin13(n)],
            "plu": None,
            "sku": f"SKU{n:07d}",
            "sold_by": "piece",
            "active": True,
            "version": 1,
        }
        for n in range(N_ITEMS)
    ]
    path.write_text(json.dumps({"version": 1, "items": items}))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Appliance:
    """One agent process and the register it supervises."""

    def __init__(self, workdir: Path, catalog: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.device_id = f"bench-{uuid.uuid4().hex[:10]}"
        register = {
            "store_file": str(DEMO_STORE),
            "catalog": {"file": str(catalog), "sync": False},
            "kiosk": {"port": self.port},
            "simulate": {"card_terminal": True},
        }
        (workdir / "register.json").write_text(json.dumps(register))
        agent = {
            "device_id": self.device_id,
            "broker_url": BROKER,
            "data_dir": str(workdir / "data"),
            "register_settings": str(workdir / "register.json"),
            "metrics_port": free_port(),  # the agent's own /metrics, served as in production
        }
        (workdir / "agent.json").write_text(json.dumps(agent))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
        env["PYTHONPATH"] = str(ROOT)
        started = time.perf_counter()
        with (self.workdir / "agent.log").open("ab") as log:
            self.process = subprocess.Popen(
                # the service's entry point (no typer): python -m edge.agent
                [
                    sys.executable,
                    "-m",
                    "edge.agent",
                    "--settings",
                    str(self.workdir / "agent.json"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        return started

    def register(self) -> psutil.Process:
        assert self.process is not None
        (child,) = psutil.Process(self.process.pid).children()
        return child

    async def ready_after(self, started: float) -> float:
        """Seconds from ``started`` until ``/healthz`` answers 200."""
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.perf_counter() - started < LIMIT_S:
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/healthz")
                    if response.status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                await asyncio.sleep(POLL_S)
        raise RuntimeError(f"the register was not ready within {LIMIT_S} s: see {self.workdir}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


async def main(rounds: Rounds) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-appliance-") as tmp:
        catalog = Path(tmp) / "catalog-100k.json"
        catalog_100k(catalog)
        for number in rounds.each():
            workdir = Path(tmp) / f"round-{number}"
            workdir.mkdir()
            appliance = Appliance(workdir, catalog)
            try:
                started = appliance.start()
                rounds.add(
                    "first_start_ready_s",
                    await appliance.ready_after(started),
                    label="first start (stores the catalog) → ready",
                    unit="s",
                    digits=2,
                )
                rounds.add(
                    "first_start_cpu_s",
                    cpu_s(appliance.register()),
                    label="  register CPU to ready (first start)",
                    unit="s",
                    digits=2,
                )
                appliance.stop()
                started = appliance.start()
                rounds.add(
                    "start_ready_s",
                    await appliance.ready_after(started),
                    label="agent start → register ready",
                    unit="s",
                    goal=Goal("<", 3),
                    digits=2,
                )
                rounds.add(
                    "start_cpu_s",
                    cpu_s(appliance.register()),
                    label="  register CPU to ready (start)",
                    unit="s",
                    digits=2,
                )
                await asyncio.sleep(1.0)  # the first heartbeats and state messages are out
                assert appliance.process is not None
                register = appliance.register()
                rounds.add(
                    "agent_rss_mb",
                    rss_mb(psutil.Process(appliance.process.pid)),
                    label="agent RSS",
                    unit="MB",
                    goal=Goal("<", 40),
                )
                rounds.add(
                    "register_rss_mb",
                    rss_mb(register),
                    label="register RSS, 100,000 items",
                    unit="MB",
                    goal=Goal("<", 150),
                )
                killed = time.perf_counter()
                register.send_signal(signal.SIGKILL)
                register.wait(10)
                rounds.add(
                    "restart_ready_s",
                    await appliance.ready_after(killed),
                    label="SIGKILL → register ready",
                    unit="s",
                    goal=Goal("<", 3),
                    digits=2,
                )
                rounds.add(
                    "restart_cpu_s",
                    cpu_s(appliance.register()),
                    label="  register CPU to ready (restart)",
                    unit="s",
                    digits=2,
                )
            finally:
                appliance.stop()
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "appliance.json",
        catalog_items=N_ITEMS,
        python=sys.version.split()[0],
        cpus=os.cpu_count(),
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    args = parser.parse_args()
    asyncio.run(main(Rounds("appliance", rounds=args.rounds)))


if __name__ == "__main__":
    run()
