"""The state a real register reports reaches the API: release, slot, every peripheral's health."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.control_plane.commands.fleet_harness import (
    GUARD_S,
    new_device_id,
    running_register,
    running_site,
)
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


async def test_state_arrives_and_shows_the_printer_healthy(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    device_id = new_device_id()
    url = f"/api/devices/{device_id}/state"
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        before = await site.api.get(url)
        async with running_register(tmp_path, broker_url=mosquitto.url, device_id=device_id):

            async def printer_connected() -> bool:
                answer = await site.api.get(url)
                if answer.status_code == 404:  # nothing reported yet
                    return False
                printer = answer.json()["peripherals"].get("receipt-printer", {})
                return printer.get("connected") is True

            await wait_until(printer_connected, what="a connected printer in the reported state")
            state = (await site.api.get(url)).json()
        unknown = await site.api.get("/api/devices/reg-nobody/state")
    assert before.status_code == 404
    assert "not reported" in before.json()["detail"]
    assert unknown.status_code == 404
    assert (state["device_id"], state["app_release"]) == (device_id, "2026.11.1")
    printer = state["peripherals"]["receipt-printer"]
    assert (printer["kind"], printer["error"]) == ("printer", None)
    assert printer["last_seen"] is not None
    assert {"receipt-printer", "door-reader"} <= set(state["peripherals"])
    assert not [p for p in state["problems"] if p.startswith("receipt-printer")]
