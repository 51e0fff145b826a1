"""``storefleet demo`` as a person runs it: it sells, serves the console and kiosks, and Ctrl-C
stops everything with nothing left running."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.harness.services import free_port

pytestmark = pytest.mark.slow


def _wait_for(check, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"demo never showed {what}"
        time.sleep(0.25)


def _printed_token(demo: subprocess.Popen[str], printed: list[str]) -> str:
    """Read the demo's output up to the API token it prints (keeping every line read)."""
    assert demo.stdout is not None
    for line in demo.stdout:
        printed.append(line)
        found = re.search(r"read-only token: (sft_\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError("the demo printed no API token:\n" + "".join(printed))


def test_demo_sells_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port, kiosk_base = free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storefleet.cli",
            "demo",
            "--stores",
            "2",
            "--rate",
            "4",
            "--port",
            str(port),
            "--kiosk-base-port",
            str(kiosk_base - 1),
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        token = _printed_token(demo, printed)  # the API answers operators only
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        _wait_for(lambda: api.get("/api/sales?limit=5").json(), "replicated sales")
        devices = api.get("/api/devices").json()
        assert {d["id"] for d in devices} == {"demo-s01-r1", "demo-s02-r1"}
        assert "Recent sales" in api.get("/").text
        assert httpx.get(f"{base}/api/devices").status_code == 401  # without it: refused
        assert "storefleet register" in httpx.get(f"http://127.0.0.1:{kiosk_base}/").text
        children = psutil.Process(demo.pid).children(recursive=True)
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    output = "".join(printed) + output
    assert demo.returncode == 0, output
    password = re.search(r"log in as admin@demo\.storefleet\.example, password (\S+)", output)
    assert password is not None, output  # a random password, printed (no default anywhere)
    assert len(password.group(1)) >= 20
    assert "storefleet demo stopped." in output
    assert "Traceback" not in output
    assert not [child for child in children if child.is_running() and child.status() != "zombie"]
