"""Release bundles for the agent's tests, and an HTTP server that serves them with Range.

The app wheel is the project's own, built once per session with ``pip wheel --no-deps`` from
this commit with its version bumped (pyproject and ``edge.appliance.VERSION``, which the
register says in its hello), so the test can tell the new release's register from the old. It
is built without build isolation, with the venv's setuptools and wheel (the test extra pins
them): no package index is needed, so CI on a clean clone builds it offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import release_bundle as rb
from protocols.messages import DesiredRelease
from storefleet.release_cli import BuiltBundle, build_app_wheel, build_bundle
from tests.harness.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[4]
NEW_VERSION = "0.2.0"


def build_bumped_wheel(workdir: Path, version: str = NEW_VERSION) -> Path:
    """The project's wheel at ``version`` (this commit's code)."""
    source = workdir / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    for path, pattern in (
        (source / "pyproject.toml", r'^version = "[^"]+"'),
        (source / "edge" / "appliance.py", r'^VERSION = "[^"]+"'),
    ):
        text = path.read_text()
        key = pattern.split(" ", 1)[0].lstrip("^")
        path.write_text(re.sub(pattern, f'{key} = "{version}"', text, count=1, flags=re.M))
    return build_app_wheel(source, workdir / "wheel", build_isolation=False)


def crashing_copy(wheel: Path, out_dir: Path) -> Path:
    """The same wheel whose register exits at once (``edge/cli.py`` replaced)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "edge/cli.py":
                data = b"raise SystemExit('this release cannot start')\n"
            copy.writestr(item, data)
    return target


#: In the printer service: each call to the printer, and what the broken release calls instead.
PRINTER_CALLS = (b"self._printer.status)", b"self._printer.print_job, job.payload)")
BROKEN_PRINTER = b"""


def _broken_by_this_release(*_: object) -> NoReturn:
    raise DeviceUnavailableError("this release cannot talk to it", device="printer")
"""


def broken_printer_copy(wheel: Path, out_dir: Path) -> Path:
    """The same wheel whose register starts and sells but can no longer reach its printer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "edge/peripherals/printer/service.py":
                status, print_job = PRINTER_CALLS
                assert status in data, "the printer service changed: update PRINTER_CALLS"
                assert print_job in data, "the printer service changed: update PRINTER_CALLS"
                data = data.replace(status, b"_broken_by_this_release)")
                data = data.replace(print_job, b"_broken_by_this_release, job.payload)")
                data = data.replace(
                    b"from __future__ import annotations\n",
                    b"from __future__ import annotations\n\nfrom typing import NoReturn\n",
                )
                data += BROKEN_PRINTER
            copy.writestr(item, data)
    return target


@dataclass
class Releases:
    """A signing key, the bundles made with it, and where they are."""

    key: Ed25519PrivateKey
    good: BuiltBundle
    crashing: BuiltBundle
    printer_broken: BuiltBundle  # starts and sells, but its printer never answers
    too_new: BuiltBundle  # needs an agent newer than this one
    stranger: BuiltBundle  # signed by a key the agent does not trust
    tampered: Path  # good's bytes with one wheel byte changed
    forged: Path  # good's bytes with one manifest byte changed (the signature no longer fits)

    @property
    def public_key(self) -> str:
        return rb.public_key_text(self.key.public_key())


def make_releases(workdir: Path, wheel: Path) -> Releases:
    key = Ed25519PrivateKey.generate()
    good = build_bundle(wheels=[wheel], key=key, out_dir=workdir / "good")
    crashing = build_bundle(
        wheels=[crashing_copy(wheel, workdir / "crash-wheel")],
        key=key,
        out_dir=workdir / "crash",
        version="0.3.0",
    )
    printer_broken = build_bundle(
        wheels=[broken_printer_copy(wheel, workdir / "printer-wheel")],
        key=key,
        out_dir=workdir / "printer",
        version="0.9.0",
    )
    too_new = build_bundle(
        wheels=[wheel], key=key, out_dir=workdir / "new", version="0.4.0", min_agent_version="99"
    )
    stranger = build_bundle(
        wheels=[wheel], key=Ed25519PrivateKey.generate(), out_dir=workdir / "x", version="0.5.0"
    )
    data = bytearray(good.path.read_bytes())
    data[-20000] ^= 0x55  # inside the wheel (the tar ends with padding, then the wheel's tail)
    tampered = workdir / "tampered" / "storefleet-app-0.6.0.sfb"
    tampered.parent.mkdir()
    tampered.write_bytes(bytes(data))
    forged_bytes = bytearray(good.path.read_bytes())
    forged_bytes[512 + 2] ^= 0x01  # manifest.json's first data block: '{"app"…'
    forged = workdir / "forged" / "storefleet-app-0.8.0.sfb"
    forged.parent.mkdir()
    forged.write_bytes(bytes(forged_bytes))
    return Releases(
        good=good,
        crashing=crashing,
        printer_broken=printer_broken,
        too_new=too_new,
        stranger=stranger,
        tampered=tampered,
        forged=forged,
        key=key,
    )


def desire(bundle: BuiltBundle, base_url: str, **changes: Any) -> DesiredRelease:
    """The retained message that asks for ``bundle``."""
    fields: dict[str, Any] = {
        "version": bundle.manifest.version,
        "url": f"{base_url}/{bundle.path.name}",
        "sha256": bundle.sha256,
        "signature": bundle.signature.signature,
        "rollout": f"r-{bundle.manifest.version}",
    } | changes
    return DesiredRelease(**fields)


@dataclass
class BundleServer:
    """Serves files by name with Range; can cut a response mid-body (``cut``: name → times),
    or send half of it and then nothing until the client goes away (``stall``: names, once
    each; ``stalled`` is set when that half is sent)."""

    files: dict[str, Path]
    port: int = field(default_factory=free_port)
    cut: dict[str, int] = field(default_factory=dict)
    stall: set[str] = field(default_factory=set)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (name, Range)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        name = scope["path"].rsplit("/", 1)[-1]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        asked = headers.get("range")
        self.requests.append((name, asked))
        path = self.files.get(name)
        if path is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        data = path.read_bytes()
        start = 0
        status = 200
        if asked:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 416,
                        "headers": [(b"content-range", f"bytes */{len(data)}".encode())],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            status = 206
        body = data[start:]
        head = [(b"content-length", str(len(body)).encode()), (b"accept-ranges", b"bytes")]
        if status == 206:
            head.append((b"content-range", f"bytes {start}-{len(data) - 1}/{len(data)}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": head})
        if self.cut.get(name, 0) > 0:
            self.cut[name] -= 1
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            raise ConnectionAbortedError("the test cuts this download mid-body")
        if name in self.stall:
            self.stall.discard(name)
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            self.stalled.set()
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serving(server: BundleServer) -> AsyncIterator[BundleServer]:
    config = uvicorn.Config(
        server, host="127.0.0.1", port=server.port, log_level="critical", lifespan="off"
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve(), name="bundle-server")
    await wait_until(lambda: running.started, timeout=30, what="the bundle server")
    try:
        yield server
    finally:
        running.should_exit = True
        await task
