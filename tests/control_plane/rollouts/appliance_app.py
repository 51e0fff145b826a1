"""A small appliance app for the fleet rollout tests: a register that only speaks the contract.

Why: a hundred real registers (kiosk, ledger, peripherals: ~1.6 s of CPU each to start) do not
fit a 2-core machine several times over. The agent only knows its register through the local
contract (``docs/agent-register-contract.md``): a ``hello``, then ``heartbeat`` lines saying
whether it is ready, what it sold, how replication and each peripheral are, and a ``result`` for
each ``command``. This app says exactly that, from a wheel built here into a real signed bundle,
installed by the agent into a slot and started from it as ``<slot>/bin/python -m edge.cli
register`` — the slot's ``edge`` package is this one. What it does is baked in per release:

* ``good`` — ready at once, a sale every two seconds, its receipt printer connected;
* ``crash`` — exits at start, before saying hello (a release that crashes on start);
* ``printer`` — ready and selling, but its printer unreachable (a release that breaks printing);
* ``never_ready`` — says hello and beats, never ready to sell.

Each sale is written to ``<data_dir>/sales.json`` (the release that sold it, how many since the
register started, its pid), so a test can see which release an appliance sells with.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storefleet.release_cli import BuiltBundle, build_bundle

Behaviour = Literal["good", "crash", "printer", "never_ready"]
DISTRIBUTION = "storefleet"

REGISTER = '''\
"""The rollout tests' register: the agent contract and nothing else (tests/.../appliance_app)."""

import asyncio
import json
import os
import sys
import time

VERSION = {version!r}
BEHAVIOUR = {behaviour!r}
BEAT_S = 2.0


def now_ms():
    return time.time_ns() // 1_000_000


def line(message):
    return (json.dumps(dict(message, v=1)) + "\\n").encode()


def printer():
    if BEHAVIOUR == "printer":
        return {{"device": "receipt-printer", "kind": "printer", "connected": False,
                "error": "this release cannot talk to it"}}
    return {{"device": "receipt-printer", "kind": "printer", "connected": True, "error": None}}


def record(data_dir, committed):
    path = os.path.join(data_dir, "sales.json")
    with open(path + ".new", "w") as out:
        json.dump({{"release": VERSION, "committed": committed, "pid": os.getpid()}}, out)
    os.replace(path + ".new", path)


async def answer(reader, writer):
    while raw := await reader.readline():
        message = json.loads(raw)
        if message.get("type") == "command":
            writer.write(line({{"type": "result", "id": message["id"], "ok": True}}))


async def main():
    if BEHAVIOUR == "crash":
        raise SystemExit("this release cannot start")
    data_dir = os.environ["STOREFLEET_EDGE_DATA_DIR"]
    reader, writer = await asyncio.open_unix_connection(os.environ["STOREFLEET_EDGE_AGENT_SOCKET"])
    writer.write(line({{"type": "hello", "pid": os.getpid(), "release": VERSION}}))
    answering = asyncio.create_task(answer(reader, writer))
    ready = BEHAVIOUR != "never_ready"
    committed = 0
    while not answering.done():
        if ready:
            committed += 1
            record(data_dir, committed)
        writer.write(line({{
            "type": "heartbeat", "ts": now_ms(), "ready": ready,
            "sales": {{"committed": committed, "last_seq": committed}},
            "replication": {{"connected": True, "acked_seq": committed, "lag_ms": 0}},
            "peripherals": {{"receipt-printer": printer()}},
        }}))
        await writer.drain()
        await asyncio.sleep(BEAT_S)


if __name__ == "__main__" and sys.argv[1:] == ["register"]:
    asyncio.run(main())
'''


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def app_wheel(version: str, behaviour: Behaviour, out_dir: Path) -> Path:
    """The app's wheel at ``version`` doing ``behaviour`` (pure Python, RECORD with hashes)."""
    info = f"{DISTRIBUTION}-{version}.dist-info"
    files = {
        "edge/__init__.py": b"",
        "edge/cli.py": REGISTER.format(version=version, behaviour=behaviour).encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: {version}\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: storefleet-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def app_bundle(
    version: str, behaviour: Behaviour, key: Ed25519PrivateKey, workdir: Path
) -> BuiltBundle:
    """A signed bundle of the app at ``version`` doing ``behaviour``."""
    wheel = app_wheel(version, behaviour, workdir / f"wheel-{version}")
    return build_bundle(
        wheels=[wheel], key=key, out_dir=workdir / f"bundle-{version}", version=version
    )
