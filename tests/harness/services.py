"""Real services for tests: a private Mosquitto per test (so it can be killed) and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
DEV_CONF = ROOT / "images" / "mosquitto" / "mosquitto-dev.conf"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


#: The ports tests hand out lie below Linux's ephemeral range (32768–60999): a port the kernel
#: picked for ``bind(0)`` is one it may also give, a moment later, to any process's outgoing
#: connection (a database client, a browser), which then holds it when the test's server binds —
#: seen as "address already in use" with four xdist workers. Each worker takes its own slice, so
#: two workers never hand out the same port, and walks it in turn from a per-process start.
TEST_PORTS = range(20_000, 32_000)


def _worker_ports() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    size = len(TEST_PORTS) // workers
    start = TEST_PORTS.start + (int(worker or 0) % workers) * size
    return range(start, start + size)


_turn = itertools.count(os.getpid())


def free_port() -> int:
    """A loopback port nobody listens on right now, from this worker's slice of `TEST_PORTS`."""
    ports = _worker_ports()
    for _ in range(len(ports)):
        port = ports[next(_turn) % len(ports)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (or lingering): the next one
            return port
    raise RuntimeError(f"no free loopback port in {ports}")


def port_open(port: int) -> bool:
    """Whether something accepts TCP on loopback ``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Mosquitto:
    """A Mosquitto process with the development config on its own port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        text = DEV_CONF.read_text().replace(
            "listener 1883 127.0.0.1", f"listener {self.port} 127.0.0.1"
        )
        self.conf.write_text(text)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


async def create_pg_database() -> str:
    """A fresh database; returns its SQLAlchemy URL."""
    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_pg_database(url: str) -> None:
    """Drop a database made by :func:`create_pg_database`."""
    name = url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def wait_until(
    predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> None:  # type: ignore[no-untyped-def]
    """Poll an async or sync predicate until true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
