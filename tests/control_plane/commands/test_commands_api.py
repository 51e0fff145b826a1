"""Remote commands end to end: API → MQTT → the real fleet agent and hub → result → API.

The register is real (ledger, replicator, simulated peripherals on their wire protocols, agent);
the committed count reaches the cloud by replication and shows in ``/api/stock-counts``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.harness.services import Mosquitto, wait_until

from .fleet_harness import (
    GTINS,
    GUARD_S,
    ON_SHELF,
    STORE,
    book_history,
    new_device_id,
    running_register,
    running_site,
)

pytestmark = pytest.mark.services


async def test_count_start_then_stop_returns_the_variance_and_replicates(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        async with running_register(
            tmp_path, broker_url=mosquitto.url, device_id=device_id
        ) as register:
            await book_history(register.ledger)
            started = await site.command(
                device_id, "stock_count.start", session_id="C-1", location="shop floor"
            )
            assert (started["status"], started["ok"]) == ("done", True), started
            assert started["result"] == {"session_id": "C-1", "expected_gtins": len(GTINS)}
            session = register.hub.count("C-1")
            await wait_until(lambda: session.distinct_tags == sum(ON_SHELF.values()))
            stopped = await site.command(device_id, "stock_count.stop", session_id="C-1")
            assert (stopped["status"], stopped["ok"]) == ("done", True), stopped
            report = stopped["result"]["report"]

            async def replicated() -> bool:
                counts = await site.api.get("/api/stock-counts", params={"store_id": STORE})
                return any(c["report"]["session_id"] == "C-1" for c in counts.json())

            await wait_until(replicated, what="the committed count in the cloud")
            counts = (await site.api.get("/api/stock-counts", params={"store_id": STORE})).json()
    assert {line["gtin"]: line["variance"] for line in report["lines"] if line["variance"]} == {
        GTINS[0]: +2  # 10 - 2 sold = 8 expected, 10 on the shelf
    }
    assert (report["expected_total"], report["counted_total"]) == (48, 50)
    latest = counts[0]
    assert (latest["device_id"], latest["store_id"], latest["seq"]) == (
        device_id,
        STORE,
        stopped["result"]["seq"],
    )
    assert latest["report"] == report
    assert [c["report"]["session_id"] for c in counts] == ["C-1", "C-0"]


async def test_printer_test_page_and_drawer_open_are_answered(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        async with running_register(tmp_path, broker_url=mosquitto.url, device_id=device_id):
            page = await site.command(device_id, "printer.test_page")
            drawer = await site.command(device_id, "drawer.open", reason="float check", by="ops-1")
            refused = await site.command(device_id, "drawer.open", reason="no one asked")
            listed = (await site.api.get(f"/api/devices/{device_id}/commands")).json()
    assert (page["ok"], set(page["result"])) == (True, {"job_id"})
    assert (drawer["ok"], set(drawer["result"])) == (True, {"seq", "job_id"})
    assert (refused["status"], refused["ok"]) == ("done", False)
    assert "by" in refused["error"]
    assert [c["id"] for c in listed] == [refused["id"], drawer["id"], page["id"]]


@pytest.mark.parametrize(
    ("device", "body", "code"),
    [
        pytest.param("known", {"name": "shutdown"}, 400, id="unknown-name"),
        pytest.param("known", {"name": "printer.test_page", "timeout_s": 0}, 422, id="bad-timeout"),
        pytest.param("reg-nobody", {"name": "printer.test_page"}, 404, id="unknown-device"),
    ],
)
async def test_refused_commands(
    database_url: str, mosquitto: Mosquitto, device: str, body: dict[str, object], code: int
) -> None:
    device_id = new_device_id() if device == "known" else device
    async with running_site(database_url=database_url, broker_url=mosquitto.url) as site:
        if device == "known":
            await site.cloud.register(device_id)
        answer = await site.api.post(f"/api/devices/{device_id}/commands", json=body)
        listed = (await site.api.get(f"/api/devices/{device_id}/commands")).json()
        missing = await site.api.get(f"/api/devices/{device_id}/commands/0123abcd")
    assert answer.status_code == code, answer.text
    assert listed == []
    assert missing.status_code == 404
