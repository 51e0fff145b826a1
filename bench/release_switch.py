"""Release benchmark on one appliance: desire → committed, and the register's downtime.

Run: .venv/bin/python bench/release_switch.py [--rounds N] [--window S] — prints a table and
writes bench/results/release_switch.json.

Once: this commit's app wheel is built with its version bumped (``pip wheel --no-deps``, as
``storefleet release build`` does), bundled and signed, and served over HTTP on loopback.
Each round is a fresh appliance (the real agent, ``python -m edge.agent``, on the Mosquitto at
127.0.0.1:1883, its register on the demo store) that trusts the key. Once its register is ready,
the retained ``DesiredRelease`` is published and the figures are:

* desire → succeeded: seconds from the publish to the ``release.progress`` ``succeeded`` event
  (download, verify, install into a slot venv, switch, the new register ready, and the health
  window of ``--window`` seconds, which is included).
* register downtime: the longest stretch during the release in which the register's
  ``/healthz`` did not answer 200 (polled every 20 ms): the old register stopping and the new
  one starting. Goal (issue 11): < 5 s.
* install into the slot: seconds from ``installing`` to ``confirming`` (venv and pip, no goal).
* where the downtime goes: from ``/healthz`` failing to the old register's process gone (it
  stops), and from then to the new register answering 200 (it starts); and the CPU seconds the
  new register had used by then (user + system): on a loaded machine, the start's wall time
  against that is time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.rounds import Goal, Rounds, add_rounds_argument
from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE
from protocols import release_bundle as rb
from protocols.codec import decode, encode
from protocols.messages import DesiredRelease, Event
from protocols.topics import Channel, device_topic
from storefleet.release_cli import BuiltBundle, build_app_wheel, build_bundle

BROKER_HOST, BROKER_PORT = "127.0.0.1", 1883
POLL_S = 0.02
LIMIT_S = 300.0
NEW_VERSION = "0.2.0"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bumped_bundle(workdir: Path, key: Ed25519PrivateKey) -> BuiltBundle:
    """This commit's wheel at NEW_VERSION, bundled and signed."""
    source = workdir / "source"
    source.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    for path, key_name in (
        (source / "pyproject.toml", "version"),
        (source / "edge" / "appliance.py", "VERSION"),
    ):
        text = path.read_text()
        path.write_text(
            re.sub(
                rf'^{key_name} = "[^"]+"',
                f'{key_name} = "{NEW_VERSION}"',
                text,
                count=1,
                flags=re.M,
            )
        )
    wheel = build_app_wheel(source, workdir / "wheel", build_isolation=False)  # offline
    return build_bundle(wheels=[wheel], key=key, out_dir=workdir / "bundle")


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the bundle without a log line per request (the table is the output)."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve_directory(directory: Path) -> tuple[ThreadingHTTPServer, int]:
    port = free_port()
    handler = partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


class Appliance:
    """One agent process (trusting the release key) and the register it supervises."""

    def __init__(self, workdir: Path, public_key: str, window_s: float) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.device_id = f"bench-{uuid.uuid4().hex[:10]}"
        register = {
            "store_file": str(DEMO_STORE),
            "catalog": {"file": str(DEMO_CATALOG), "sync": False},
            "kiosk": {"port": self.port},
            "simulate": {"card_terminal": True},
        }
        (workdir / "register.json").write_text(json.dumps(register))
        agent = {
            "device_id": self.device_id,
            "broker_url": f"mqtt://{BROKER_HOST}:{BROKER_PORT}",
            "data_dir": str(workdir / "data"),
            "register_settings": str(workdir / "register.json"),
            "trusted_release_keys": [public_key],
            "release_health_window_s": window_s,
        }
        (workdir / "agent.json").write_text(json.dumps(agent))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
        env["PYTHONPATH"] = str(ROOT)
        with (self.workdir / "agent.log").open("ab") as log:
            self.process = subprocess.Popen(
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

    async def ready(self, client: httpx.AsyncClient) -> bool:
        try:
            response = await client.get(f"http://127.0.0.1:{self.port}/healthz")
        except httpx.TransportError:
            return False
        return response.status_code == httpx.codes.OK

    def register_pids(self) -> set[int]:
        """The agent's child processes (its register)."""
        if self.process is None:
            return set()
        try:
            return {child.pid for child in psutil.Process(self.process.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def _cpu_s(pids: set[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def one_round(app: Appliance, bundle: BuiltBundle, base_url: str) -> dict[str, float]:
    wanted = DesiredRelease(
        version=NEW_VERSION,
        url=f"{base_url}/{bundle.path.name}",
        sha256=bundle.sha256,
        signature=bundle.signature.signature,
        rollout="bench",
    )
    states: dict[str, float] = {}
    async with (
        httpx.AsyncClient(timeout=1.0) as http,
        aiomqtt.Client(BROKER_HOST, BROKER_PORT, identifier=f"cp-{app.device_id}") as mqtt,
    ):
        started = time.perf_counter()
        while not await app.ready(http):
            if time.perf_counter() - started > LIMIT_S:
                raise RuntimeError(f"register not ready: see {app.workdir}")
            await asyncio.sleep(POLL_S)
        await mqtt.subscribe(device_topic(app.device_id, Channel.EVENTS), qos=1)

        async def follow() -> None:
            async for message in mqtt.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                event = decode(str(message.topic), payload).message
                if isinstance(event, Event) and event.kind == "release.progress":
                    states[event.body["state"]] = time.perf_counter()
                    if event.body["state"] in ("succeeded", "failed", "reverted", "timed_out"):
                        return

        following = asyncio.create_task(follow())
        old = app.register_pids()
        old_gone: float | None = None
        published = time.perf_counter()
        await mqtt.publish(
            device_topic(app.device_id, Channel.RELEASE), encode(wanted), qos=1, retain=True
        )
        down_since: float | None = None
        longest = 0.0
        split: tuple[float, float | None] = (0.0, None)
        cpu = 0.0
        while not following.done():
            if time.perf_counter() - published > LIMIT_S:
                raise RuntimeError(f"no final state: see {app.workdir}")
            up = await app.ready(http)
            now = time.perf_counter()
            if old_gone is None and old and not any(psutil.pid_exists(p) for p in old):
                old_gone = now
            if not up and down_since is None:
                down_since = now
            if up and down_since is not None:
                if now - down_since > longest:
                    longest = now - down_since
                    split = (down_since, old_gone)
                    cpu = _cpu_s(app.register_pids() - old)
                down_since = None
            await asyncio.sleep(POLL_S)
        await following
        await mqtt.publish(device_topic(app.device_id, Channel.RELEASE), b"", retain=True)
    if "succeeded" not in states:
        raise RuntimeError(f"the release did not succeed ({sorted(states)}): see {app.workdir}")
    down, gone = split
    stopping = 0.0 if gone is None else max(0.0, gone - down)
    return {
        "total": states["succeeded"] - published,
        "downtime": longest,
        "stopping": stopping,
        "starting": longest - stopping,
        "starting_cpu": cpu,
        "install": states["confirming"] - states["installing"],
    }


async def main(rounds: Rounds, window_s: float) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="sf-bench-release-") as scratch:
        work = Path(scratch)
        bundle = bumped_bundle(work, key)
        server, port = serve_directory(bundle.path.parent)
        try:
            for n in rounds.each():
                home = work / f"round-{n}"
                home.mkdir()
                app = Appliance(home, rb.public_key_text(key.public_key()), window_s)
                app.start()
                try:
                    figures = await one_round(app, bundle, f"http://127.0.0.1:{port}")
                finally:
                    app.stop()
                rounds.add("total", figures["total"], label="desire → succeeded", unit="s")
                rounds.add(
                    "downtime",
                    figures["downtime"],
                    label="register downtime",
                    unit="s",
                    goal=Goal("<", 5.0),
                )
                rounds.add(
                    "stopping", figures["stopping"], label="  of which: old one stopping", unit="s"
                )
                rounds.add(
                    "starting", figures["starting"], label="  of which: new one starting", unit="s"
                )
                rounds.add(
                    "starting_cpu",
                    figures["starting_cpu"],
                    label="  new one's CPU until ready",
                    unit="s",
                )
                rounds.add("install", figures["install"], label="install into the slot", unit="s")
        finally:
            server.shutdown()
    return {"bundle_bytes": bundle.size, "health_window_s": window_s}


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--window", type=float, default=2.0, help="health window, seconds")
    args = parser.parse_args()
    rounds = Rounds("release switch", rounds=args.rounds)
    detail = asyncio.run(main(rounds, args.window))
    print(rounds.table())
    rounds.write(ROOT / "bench" / "results" / "release_switch.json", detail=detail)


if __name__ == "__main__":
    run()
