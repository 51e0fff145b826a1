"""The REST API: registry and replicated sales, with the real app, broker and store."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

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
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
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
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        assert (await api.post(path, json=body)).status_code == status


async def test_duplicate_registration_is_a_conflict(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        tenant = {"id": "acme", "name": "Acme"}
        assert (await api.post("/api/tenants", json=tenant)).status_code == 201
        assert (await api.post("/api/tenants", json=tenant)).status_code == 409


# -- every route validates: what PostgreSQL refused with a 500 (issue 8) is a 422 on both stores --

TOO_LONG = {
    "tenant-name-300": ("POST", "/api/tenants", {"id": "acme-long", "name": "A" * 300}),
    "store-time-zone-100": (
        "POST",
        "/api/stores",
        {"id": "acme-02", "tenant_id": "acme", "name": "B", "timezone": "Z" * 100},
    ),
    "register-name-200": (
        "POST",
        "/api/devices",
        {"id": "acme-01-r2", "store_id": "acme-01", "register_name": "R" * 200},
    ),
}
NUL = {
    "body": ("POST", "/api/tenants", {"id": "nul-1", "name": "Ac\x00me"}),
    "path": ("GET", "/api/devices/acme%0001-r1", None),
    "filter": ("GET", "/api/devices?store_id=acme%0001", None),
    "sales-filter": ("GET", "/api/sales?device_id=a%00b", None),
    "catalog-item": (
        "POST",
        "/api/catalog/items",
        {
            "tenant_id": "acme",
            "items": [{"id": "A", "name": "x\x00", "price_minor": 1, "tax_class": "B"}],
        },
    ),
    "command-args": (
        "POST",
        "/api/devices/acme-01-r1/commands",
        {"name": "drawer.open", "args": {"\x00": 1}},
    ),
}
OUT_OF_RANGE = {
    "commands-limit-negative": ("GET", "/api/devices/acme-01-r1/commands?limit=-1", None),
    "commands-limit-huge": (
        "GET",
        "/api/devices/acme-01-r1/commands?limit=100000000000000000000",
        None,
    ),
    "stock-counts-limit-negative": ("GET", "/api/stock-counts?limit=-5", None),
    "sales-limit-huge": ("GET", "/api/sales?limit=1000001", None),
    "unknown-time-zone": (
        "POST",
        "/api/stores",
        {"id": "acme-03", "tenant_id": "acme", "name": "C", "timezone": "Mars/Olympus_Mons"},
    ),
}
# JSON can carry a lone surrogate; UTF-8 (and so either store) cannot
LONE_SURROGATE = '{"id": "acme-09", "name": "\\ud800"}'


async def _seeded(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/tenants", json={"id": "acme", "name": "Acme"})).status_code == 201
    store = {"id": "acme-01", "tenant_id": "acme", "name": "High Street"}
    assert (await api.post("/api/stores", json=store)).status_code == 201
    device = {"id": "acme-01-r1", "store_id": "acme-01"}
    assert (await api.post("/api/devices", json=device)).status_code == 201


@pytest.mark.parametrize(
    "cases",
    [
        pytest.param(TOO_LONG, id="longer-than-the-column"),
        pytest.param(NUL, id="nul-character"),
        pytest.param(OUT_OF_RANGE, id="out-of-range"),
    ],
)
async def test_bad_input_is_a_422_problem_on_both_stores(
    database_url: str,
    mosquitto: Mosquitto,
    cases: dict[str, tuple[str, str, dict[str, object] | None]],
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        await _seeded(api)
        answers = {
            name: await api.request(method, url, json=body)
            for name, (method, url, body) in cases.items()
        }
        stored = (await api.get("/api/stores")).json()
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(cases, 422)
    assert {a.headers["content-type"] for a in answers.values()} == {"application/problem+json"}
    assert {a.json()["reason"] for a in answers.values()} == {"invalid_request"}
    assert [s["id"] for s in stored] == ["acme-01"]  # nothing half-stored


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(LONE_SURROGATE.encode(), id="lone-surrogate"),
        pytest.param(b'{"id": "acme-09", "name": "\xff\xfe"}', id="not-utf-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
    ],
)
async def test_a_body_no_store_can_hold_is_a_422_problem(
    database_url: str, mosquitto: Mosquitto, body: bytes
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        answer = await api.post(
            "/api/tenants", content=body, headers={"content-type": "application/json"}
        )
    assert (answer.status_code, answer.json()["reason"]) == (422, "invalid_request")


# -- one problem-details body for every refusal --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/api/devices/nobody-r1", None, id="registry"),
        pytest.param("GET", "/api/devices/nobody-r1/state", None, id="state"),
        pytest.param(
            "POST", "/api/devices/nobody-r1/commands", {"name": "drawer.open"}, id="commands"
        ),
        pytest.param("GET", "/api/devices/nobody-r1/certificates", None, id="certificates"),
        pytest.param(
            "POST", "/api/devices/nobody-r1/decommission", {}, id="provisioning-decommission"
        ),
    ],
)
async def test_one_device_not_found_everywhere(
    database_url: str,
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    monkeypatch.setenv("STOREFLEET_CA_DIRECTORY", str(tmp_path / "ca"))
    monkeypatch.setenv("STOREFLEET_CA_DEMO", "1")
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        answer = await api.request(method, path, json=body)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "urn:storefleet:problem:device_not_found",
        "title": "Device not found",
        "status": 404,
        "detail": "device 'nobody-r1' does not exist",
        "reason": "device_not_found",
        "advice": "",
        "errors": [],
    }


async def test_a_refusal_is_counted_and_logged_once_without_a_traceback(
    database_url: str, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        counter = 'storefleet_api_refusals_total{reason="tenant_not_found",status="404"}'

        async def refusals() -> float:
            lines = (await api.get("/metrics/")).text.splitlines()
            return sum(float(line.split()[-1]) for line in lines if line.startswith(counter))

        before = await refusals()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="control_plane"):
            store = {"id": "acme-01", "tenant_id": "nobody", "name": "High Street"}
            answer = await api.post("/api/stores", json=store)
        after = await refusals()
    refused = [r for r in caplog.records if r.name == "control_plane.problems"]
    assert answer.json()["reason"] == "tenant_not_found"
    assert after - before == 1
    assert len(refused) == 1
    assert "tenant 'nobody' does not exist" in refused[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


async def test_an_invalid_request_names_each_field(database_url: str, mosquitto: Mosquitto) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        answer = await api.post("/api/tenants", json={"id": "Bad/Id", "currency": "euro"})
    problem = answer.json()
    assert (answer.status_code, problem["reason"]) == (422, "invalid_request")
    assert sorted(tuple(e["loc"]) for e in problem["errors"]) == [
        ("body", "currency"),
        ("body", "id"),
        ("body", "name"),
    ]
    assert "body.name: Field required" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        pytest.param("GET", "/api/nothing-here", 404, "not_found", id="unknown-path"),
        pytest.param("DELETE", "/api/stores", 405, "method_not_allowed", id="wrong-method"),
    ],
)
async def test_unknown_paths_and_methods_answer_a_problem(
    database_url: str, mosquitto: Mosquitto, method: str, path: str, status: int, reason: str
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        answer = await api.request(method, path)
    assert (answer.status_code, answer.json()["reason"]) == (status, reason)
    assert answer.headers["content-type"] == "application/problem+json"


# -- /docs works without internet ----------------------------------------------------------------


async def test_docs_page_loads_every_file_from_the_app_itself(
    database_url: str, mosquitto: Mosquitto
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as cp,
        cp.client() as api,
    ):
        page = await api.get("/docs")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        fetched = {url: (await api.get(url)).status_code for url in assets}
        spec = await api.get("/openapi.json")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    assert len(assets) >= 3  # script, stylesheet, icon
    assert [url for url in assets if urlsplit(url).netloc or not url.startswith("/")] == []
    assert fetched == dict.fromkeys(assets, 200)
    assert spec.json()["openapi"].startswith("3.1")
