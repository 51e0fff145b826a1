"""Uploaded appliance logs: uploaded only by the device itself (its own assertion), kept per
device, listed without their text, read back whole, and read only by operators who may see the
device. Devices sign with identities the fleet CA issued them, as enrolment would."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.devices import service
from control_plane.devices.logs import MAX_LOG_BYTES
from control_plane.operators.principal import Role
from edge.enrolment.device_auth import DeviceAuth
from provisioning.ca import CertificateAuthority
from tests.control_plane.devices.device_harness import issued_identity
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto

pytestmark = pytest.mark.services

TEXT = '{"level": "ERROR", "message": "ledger: file is not a database"}\nTraceback (most recent …\n'


async def registry(
    cp: ServedControlPlane, ca: CertificateAuthority, directory: Path
) -> dict[str, DeviceAuth]:
    """Two devices of one tenant and a second tenant, through the registry's service; each
    device with a key and a certificate of the fleet CA (its signing ``Auth``)."""
    engine = cp.app.state.engine
    await service.create_tenant(engine, tenant_id="acme", name="Acme")
    await service.create_tenant(engine, tenant_id="other", name="Other")
    await service.create_store(engine, store_id="acme-01", tenant_id="acme", name="High St")
    signers = {}
    for device in ("acme-01-r1", "acme-01-r2"):
        await service.register_device(engine, device_id=device, store_id="acme-01")
        await issued_identity(engine, ca, device_id=device, identity_dir=directory / device)
        signers[device] = DeviceAuth(directory / device)
    return signers


async def test_upload_list_and_read(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    async with served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp:
        signers = await registry(cp, fleet_ca, tmp_path)
        outsider = await cp.log_in("op@other.test", Role.OPERATOR, tenant_id="other")
        async with (
            cp.client() as admin,
            cp.anonymous(auth=signers["acme-01-r1"]) as device,
            cp.anonymous() as stranger,
        ):
            uploaded = await device.post(
                "/api/devices/acme-01-r1/logs", json={"text": TEXT, "truncated": True}
            )
            log_id = uploaded.json()["id"]
            listed = (await admin.get("/api/devices/acme-01-r1/logs")).json()
            read = (await admin.get(f"/api/devices/acme-01-r1/logs/{log_id}")).json()
            elsewhere = await admin.get(f"/api/devices/acme-01-r2/logs/{log_id}")
            anonymous = await stranger.get(f"/api/devices/acme-01-r1/logs/{log_id}")
            stranger.cookies.set("sf_session", outsider.secret)
            other_tenant = await stranger.get(f"/api/devices/acme-01-r1/logs/{log_id}")
    assert uploaded.status_code == 201
    assert uploaded.json()["bytes"] == len(TEXT.encode())
    assert [(x["id"], x["source"], x["truncated"]) for x in listed] == [(log_id, "register", True)]
    assert "text" not in listed[0]
    assert read["text"] == TEXT
    assert (elsewhere.status_code, elsewhere.json()["reason"]) == (404, "log_not_found")
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
    tmp_path: Path, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, body: dict[str, object]
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/cloud.db"
    async with served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp:
        signers = await registry(cp, fleet_ca, tmp_path)
        async with cp.client() as admin, cp.anonymous(auth=signers["acme-01-r1"]) as device:
            refused = await device.post("/api/devices/acme-01-r1/logs", json=body)
            listed = (await admin.get("/api/devices/acme-01-r1/logs")).json()
    assert refused.status_code == 422
    assert listed == []


def bearer(assertion: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {assertion}"}


async def test_only_the_device_itself_uploads_its_logs(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    """No assertion, another device's assertion, an operator's token, a replayed assertion:
    each refused, and nothing is kept under the device's name."""
    url = "/api/devices/acme-01-r1/logs"
    body = {"text": TEXT}
    async with served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp:
        signers = await registry(cp, fleet_ca, tmp_path)
        once = signers["acme-01-r1"].assertion()
        async with cp.client() as admin, cp.anonymous() as client:
            missing = await client.post(url, json=body)
            other = await client.post(
                url, json=body, headers=bearer(signers["acme-01-r2"].assertion())
            )
            operator = await admin.post(url, json=body)
            first = await client.post(url, json=body, headers=bearer(once))
            replayed = await client.post(url, json=body, headers=bearer(once))
            listed = (await admin.get(url)).json()
    assert (missing.status_code, missing.json()["reason"]) == (401, "device_token_missing")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert (other.status_code, other.json()["reason"]) == (403, "device_not_yours")
    assert operator.status_code == 401  # an operator's API token is no device's assertion
    assert first.status_code == 201
    assert (replayed.status_code, replayed.json()["reason"]) == (401, "device_token_replayed")
    assert [x["id"] for x in listed] == [first.json()["id"]]
