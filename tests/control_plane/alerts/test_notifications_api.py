"""Notification channels through the served control plane: a tenant admin adds a webhook, sees
its secret once, sends a test that the app's own supervised notifier delivers signed, and the
secret is in no list, no delivery and no audit entry afterwards. (Who may call each route, and
the 404 of another tenant's channel, are rows of tests/control_plane/test_access_table.py.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from control_plane.devices import service as registry
from control_plane.notifications.transports import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from control_plane.operators.principal import Role
from tests.control_plane.alerts.receivers import webhook_receiver
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def served(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ServedControlPlane]:
    """A control plane whose notifier may post to loopback and polls quickly."""
    monkeypatch.setenv("STOREFLEET_CP_NOTIFY_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("STOREFLEET_CP_NOTIFY_POLL_S", "0.1")
    async with served_control_plane(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}", broker_url=mosquitto.url
    ) as control_plane:
        await registry.create_tenant(control_plane.app.state.engine, tenant_id="acme", name="A")
        yield control_plane


async def test_a_tenant_admin_adds_a_webhook_and_its_test_arrives_signed(
    served: ServedControlPlane,
) -> None:
    admin = await served.log_in("admin@acme.example", Role.TENANT_ADMIN, tenant_id="acme")
    headers = {"Cookie": f"sf_session={admin.secret}", "X-CSRF-Token": admin.csrf}
    async with webhook_receiver() as receiver, served.anonymous(headers=headers) as client:
        created = await client.post(
            "/api/notifications/channels",
            json={"name": "ops chat", "kind": "webhook", "url": receiver.url},
        )
        assert created.status_code == 201, created.text
        channel = created.json()
        secret = channel["secret"]
        assert secret.startswith("whsec_")
        assert channel["tenant_id"] == "acme"

        test = await client.post(f"/api/notifications/channels/{channel['id']}/test")
        assert test.status_code == 202
        await wait_until(lambda: receiver.requests, timeout=20, what="the test notification")

        listed = await client.get("/api/notifications/channels")
        deliveries = await client.get(f"/api/notifications/channels/{channel['id']}/deliveries")
        audit = await client.get("/api/audit", params={"action": "notifications:manage"})

    (request,) = receiver.requests
    timestamp = int(request.headers[TIMESTAMP_HEADER.lower()])
    assert verify(secret, timestamp, request.body, request.headers[SIGNATURE_HEADER.lower()])
    assert json.loads(request.body)["event"] == "test"
    assert [c["id"] for c in listed.json()] == [channel["id"]]
    assert "secret" not in listed.json()[0]
    assert [(d["event"], d["status"]) for d in deliveries.json()] == [("test", "sent")]
    assert {entry["target"] for entry in audit.json()} == {
        "POST /api/notifications/channels",
        f"POST /api/notifications/channels/{channel['id']}/test",
    }
    assert secret not in listed.text + deliveries.text + audit.text
