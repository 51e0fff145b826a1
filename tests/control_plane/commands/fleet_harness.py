"""A store's register and the control plane, both real, on one private Mosquitto.

The register is what an appliance runs: a ledger with its replicator, the peripheral hub on the
simulated preset (printer, drawer, scanners and an LLRP reader over a simulated tag field, all
speaking their real wire protocols) and the fleet agent. The control plane is the whole app
(API, console, ingest) served by uvicorn in the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from edge.agent.session import AgentSettings, FleetAgent
from edge.ledger import Ledger, SaleDraft, SaleLine, Tender
from edge.peripherals.hub import PeripheralHub
from edge.peripherals.register_config import RegisterDevices
from edge.peripherals.register_peripherals import open_register_peripherals
from edge.peripherals.rfid.count import EVENT_KIND
from edge.peripherals.rfid.tag_field import TagField, make_gtin
from edge.peripherals.simulated_store import shelf_tags
from edge.register.hub_commands import agent_for_hub
from protocols.broker_url import parse_broker_url
from tests.harness.appliance import InProcessAppliance
from tests.harness.cloud import STORE, Cloud
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import wait_until

GUARD_S = 90  # only against hangs
GTINS = [make_gtin("0614141", item) for item in range(1, 6)]
ON_SHELF = dict.fromkeys(GTINS, 10)  # 50 tagged items on the shop floor


def new_device_id() -> str:
    """Metrics are process-wide: each test gets its own device."""
    return f"reg-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True, slots=True)
class Register:
    """The appliance's parts a test plays store staff with."""

    device_id: str
    ledger: Ledger
    hub: PeripheralHub
    agent: FleetAgent


@dataclass(frozen=True, slots=True)
class Site:
    """The control plane's URL, an API client on it (the bootstrap platform admin's), the
    registry's store, and the served control plane (to act as other operators)."""

    base: str
    api: httpx.AsyncClient
    cloud: Cloud
    served: ServedControlPlane

    async def command(self, device_id: str, name: str, **args: Any) -> dict[str, Any]:
        """Send a command through the API and wait until it is no longer pending."""
        sent = await self.api.post(
            f"/api/devices/{device_id}/commands", json={"name": name, "args": args}
        )
        assert sent.status_code == 202, sent.text
        url = f"/api/devices/{device_id}/commands/{sent.json()['id']}"
        done: dict[str, Any] = {}

        async def answered() -> bool:
            done.update((await self.api.get(url)).json())
            return bool(done["status"] != "pending")

        await wait_until(answered, timeout=GUARD_S, what=f"a result for {name}")
        return done


async def book_history(ledger: Ledger) -> None:
    """A previous count of 10 of each GTIN, then a sale of 2 of the first."""
    lines = [{"gtin": g, "expected": 10, "counted": 10, "variance": 0} for g in GTINS]
    await ledger.append_event(EVENT_KIND, {"session_id": "C-0", "lines": lines})
    line = SaleLine(GTINS[0], "Socks", Decimal(2), 500, 1000)
    await ledger.record_sale(SaleDraft("s1", "EUR", (line,), (Tender("cash", 1000),)))


@contextlib.asynccontextmanager
async def running_site(*, database_url: str, broker_url: str) -> AsyncIterator[Site]:
    """The registry (tenant, store) and the served control plane with its ingest connected."""
    cloud = Cloud(database_url=database_url, broker_url=broker_url)
    await cloud.open()
    try:
        async with (
            served_control_plane(database_url=database_url, broker_url=broker_url) as served,
            served.client(timeout=30) as api,
        ):

            async def connected() -> bool:
                return bool((await api.get("/healthz")).json()["ingest_connected"])

            await wait_until(connected, what="the control plane's broker connection")
            yield Site(base=served.url, api=api, cloud=cloud, served=served)
    finally:
        await cloud.close()


@contextlib.asynccontextmanager
async def running_register(
    tmp_path: Path, *, broker_url: str, device_id: str, tags: TagField | None = None
) -> AsyncIterator[Register]:
    """Ledger + replicator, simulated peripherals, fleet agent: connected until the exit."""
    async with (
        InProcessAppliance(
            device_id=device_id, ledger_path=tmp_path / "edge.db", broker_url=broker_url
        ) as appliance,
        open_register_peripherals(
            RegisterDevices(preset="simulated"),
            journal=appliance.ledger,
            data_dir=tmp_path / "hub",
            simulated_tags=tags or shelf_tags(ON_SHELF, reads_per_second=None, seed=7),
        ) as hub,
    ):
        appliance.start_replication()
        agent = agent_for_hub(
            device_id=device_id,
            broker=parse_broker_url(broker_url),
            hub=hub,
            journal=appliance.ledger,
            app_release="2026.11.1",
            settings=AgentSettings(backoff_initial=0.05, state_check_s=0.02),
        )
        async with asyncio.TaskGroup() as tasks:
            running = tasks.create_task(agent.run(), name=f"agent-{device_id}")
            await agent.connected.wait()
            yield Register(device_id=device_id, ledger=appliance.ledger, hub=hub, agent=agent)
            running.cancel()


__all__ = ["STORE", "Register", "Site", "book_history", "running_register", "running_site"]
