"""``storefleet demo``'s register is a device with an identity: it syncs its catalog from the
control plane with its own signed assertions and replicates journal batches with signed heads.

Before the demo starts, its control plane's store (SQLite in the data dir, as the demo keeps
it) gets the demo tenant and a catalog with one item the register's own seed file does not
have. The catalog routes answer only a device's assertion, so that item reaching the kiosk's
search means the register's sync was device-authenticated; the cloud refuses unsigned batches
from a device with a certificate, so stored sales with verified heads mean its replicator signed.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from control_plane.catalog import service as catalog
from control_plane.catalog.schemas import CatalogItem
from control_plane.db.engine import make_engine, migrate
from control_plane.demo import TENANT, device_id_for, seed
from edge.pos.store_config import DEMO_CATALOG
from tests.harness.services import free_port

pytestmark = pytest.mark.slow

CLOUD_ONLY = CatalogItem(
    id="cloud-oat-milk", name="Oat milk from the cloud", price_minor=245, tax_class="B"
)


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, f"the demo never showed {what}"
        time.sleep(0.25)


async def _seed_cloud(data_dir: Path) -> None:
    """The demo's store, made before it starts: its catalog is one version past the register's
    seed file, with one item more."""
    engine = make_engine(f"sqlite+aiosqlite:///{(data_dir / 'control-plane.db').resolve()}")
    try:
        await migrate(engine)
        items = [
            CatalogItem.model_validate(i) for i in json.loads(DEMO_CATALOG.read_text())["items"]
        ]
        await seed(engine, stores=1, register_name="Till 1", items=items)  # as the seed file
        await catalog.upsert_items(engine, tenant_id=TENANT, items=[CLOUD_ONLY])  # one newer
    finally:
        await engine.dispose()


def test_the_demo_register_syncs_and_replicates_as_a_signed_device(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    data_dir.mkdir()
    asyncio.run(_seed_cloud(data_dir))
    port, kiosk_base = free_port(), free_port()
    device = device_id_for(1)
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storefleet.cli",
            "demo",
            "--stores",
            "1",
            "--port",
            str(port),
            "--kiosk-base-port",
            str(kiosk_base - 1),
            "--data-dir",
            str(data_dir),
            "--no-peripherals",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed: list[str] = []
    try:
        assert demo.stdout is not None
        token = ""
        for line in demo.stdout:
            printed.append(line)
            found = re.search(r"read-only token: (sft_\S+)", line)
            if found:
                token = found.group(1)
                break
        assert token, "".join(printed)
        kiosk = httpx.Client(base_url=f"http://127.0.0.1:{kiosk_base}")
        _wait_for(
            lambda: bool(kiosk.get("/api/search", params={"q": "Oat milk from"}).json()),
            "the cloud's item at the kiosk",
        )
        found_items = kiosk.get("/api/search", params={"q": "Oat milk from"}).json()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        )
        certificates = api.get(f"/api/devices/{device}/certificates").json()
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics/").text
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=60)
    output = "".join(printed) + output

    assert [item["id"] for item in found_items] == [CLOUD_ONLY.id]
    assert (data_dir / device / "identity").is_dir()
    assert len(certificates) >= 1  # issued by the demo's CA, recorded like an enrolment's
    assert 'storefleet_device_auth_refusals_total{reason="missing"}' not in metrics
    assert demo.returncode == 0, output
    assert "Traceback" not in output
