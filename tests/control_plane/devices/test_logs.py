"""Uploaded appliance logs: kept per device, listed without their text, read back whole, and
read only by operators who may see the device."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.db.engine import make_engine
from control_plane.devices import service
from control_plane.devices.logs import MAX_LOG_BYTES
from control_plane.operators.principal import Role
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services

TEXT = '{"level": "ERROR", "message": "ledger: file is not a database"}\nTraceback (most recent …\n'


async def registry(database_url: str) -> None:
    """Two devices of one tenant and a second tenant, through the registry's service."""
    engine = make_engine(database_url)
    try:
        await service.create_tenant(engine, tenant_id="acme", name="Acme")
        await service.create_tenant(engine, tenant_id="other", name="Other")
        await service.create_store(engine, store_id="acme-01", tenant_id="acme", name="High St")
        for device in ("acme-01-r1", "acme-01-r2"):
            await service.register_device(engine, device_id=device, store_id="acme-01")
    finally:
        await engine.dispose()


async def test_upload_list_and_read(database_url: str, mosquitto: Mosquitto) -> None:
    async with served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp:
        await registry(database_url)
        outsider = await cp.log_in("op@other.test", Role.OPERATOR, tenant_id="other")
        async with cp.client() as admin, cp.anonymous() as device, cp.anonymous() as stranger:
            uploaded = await device.post(
                "/api/devices/acme-01-r1/logs", json={"text": TEXT, "truncated": True}
            )
            log_id = uploaded.json()["id"]
            listed = (await admin.get("/api/devices/acme-01-r1/logs")).json()
            read = (await admin.get(f"/api/devices/acme-01-r1/logs/{log_id}")).json()
            elsewhere = await admin.get(f"/api/devices/acme-01-r2/logs/{log_id}")
            nobody = await device.post("/api/devices/acme-01-r9/logs", json={"text": TEXT})
            anonymous = await stranger.get(f"/api/devices/acme-01-r1/logs/{log_id}")
            stranger.cookies.set("sf_session", outsider.secret)
            other_tenant = await stranger.get(f"/api/devices/acme-01-r1/logs/{log_id}")
    assert uploaded.status_code == 201
    assert uploaded.json()["bytes"] == len(TEXT.encode())
    assert [(x["id"], x["source"], x["truncated"]) for x in listed] == [(log_id, "register", True)]
    assert "text" not in listed[0]
    assert read["text"] == TEXT
    assert (elsewhere.status_code, elsewhere.json()["reason"]) == (404, "log_not_found")
    assert (nobody.status_code, nobody.json()["reason"]) == (404, "device_not_found")
    assert anonymous.status_code == 401
    assert (other_tenant.status_code, other_tenant.json()["reason"]) == (404, "device_not_found")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"text": "a\x00b"}, id="nul"),
        pytest.param({"text": "é" * (MAX_LOG_BYTES // 2 + 1)}, id="over-1-MiB-of-utf8"),
        pytest.param({"text": "x", "source": "../etc"}, id="bad-source"),
        pytest.param({"text": "x", "level": "debug"}, id="unknown-field"),
        pytest.param({}, id="no-text"),
    ],
)
async def test_an_unusable_upload_is_refused(
    tmp_path: Path, mosquitto: Mosquitto, body: dict[str, object]
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/cloud.db"
    async with served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp:
        await registry(database_url)
        async with cp.client() as admin:
            refused = await admin.post("/api/devices/acme-01-r1/logs", json=body)
            listed = (await admin.get("/api/devices/acme-01-r1/logs")).json()
    assert refused.status_code == 422
    assert listed == []
