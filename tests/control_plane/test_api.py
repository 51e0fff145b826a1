"""The REST API: registry and replicated sales, with the real app, broker and store."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from edge.simulated_register import RingSettings, ring_sales
from tests.harness.appliance import InProcessAppliance
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


async def test_registry_and_sales_api(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):
        assert (
            await api.post("/api/tenants", json={"id": "acme", "name": "Acme"})
        ).status_code == 201
        store = {"id": "acme-01", "tenant_id": "acme", "name": "High Street"}
        assert (await api.post("/api/stores", json=store)).status_code == 201
        created = await api.post("/api/devices", json={"id": "acme-01-r1", "store_id": "acme-01"})
        assert created.status_code == 201
        assert created.json()["tenant_id"] == "acme"  # from the store, never from the caller

        async with InProcessAppliance(
            device_id="acme-01-r1", ledger_path=tmp_path / "edge.db", broker_url=mosquitto.url
        ) as appliance:
            appliance.start_replication()
            committed = await ring_sales(appliance.ledger, RingSettings(rate=0, count=25, seed=3))
            await wait_until(lambda: appliance.ledger.backlog == 0, what="acks")

            async def device_online() -> bool:
                return bool((await api.get("/api/devices/acme-01-r1")).json()["online"])

            await wait_until(device_online, what="presence")
        device = (await api.get("/api/devices/acme-01-r1")).json()
        assert device["hwm"] == 25
        assert device["chain_ok"] is True
        sales = (await api.get("/api/sales", params={"store_id": "acme-01", "limit": 100})).json()
        assert sorted(s["sale_id"] for s in sales) == sorted(c.sale_id for c in committed)
        totals = (await api.get("/api/sales/totals")).json()
        expected_minor = sum(c.total_minor for c in committed)
        assert totals[0]["total_minor"] == expected_minor
        assert Decimal(totals[0]["total"]) * 100 == expected_minor  # exact, never via float


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param(
            "/api/stores",
            {"id": "x-01", "tenant_id": "nobody", "name": "X"},
            404,
            id="store-unknown-tenant",
        ),
        pytest.param(
            "/api/devices", {"id": "x-01-r1", "store_id": "nowhere"}, 404, id="device-unknown-store"
        ),
        pytest.param(
            "/api/devices",
            {"id": "Bad/Id", "store_id": "nowhere"},
            422,
            id="device-id-not-topic-safe",
        ),
        pytest.param(
            "/api/tenants", {"id": "acme", "name": "A", "currency": "euro"}, 422, id="bad-currency"
        ),
    ],
)
async def test_registry_refusals(
    database_url: str, mosquitto: Mosquitto, path: str, body: dict[str, str], status: int
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):
        assert (await api.post(path, json=body)).status_code == status


async def test_duplicate_registration_is_a_conflict(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):
        tenant = {"id": "acme", "name": "Acme"}
        assert (await api.post("/api/tenants", json=tenant)).status_code == 201
        assert (await api.post("/api/tenants", json=tenant)).status_code == 409
