"""``storefleet demo`` as a person runs it: it sells, serves the console and kiosks, and Ctrl-C
stops everything with nothing left running."""

from __future__ import annotations

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
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: httpx.get(f"{base}/api/sales?limit=5").json(), "replicated sales")
        devices = httpx.get(f"{base}/api/devices").json()
        assert {d["id"] for d in devices} == {"demo-s01-r1", "demo-s02-r1"}
        assert "Recent sales" in httpx.get(f"{base}/").text
        assert "storefleet register" in httpx.get(f"http://127.0.0.1:{kiosk_base}/").text
        children = psutil.Process(demo.pid).children(recursive=True)
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert "storefleet demo stopped." in output
    assert "Traceback" not in output
    assert not [child for child in children if child.is_running() and child.status() != "zombie"]
