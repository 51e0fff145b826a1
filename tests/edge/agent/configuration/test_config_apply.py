"""The store configuration applied by a real agent process over a real Mosquitto.

``python -m edge.agent`` starts a real register; a test client plays the control plane: it
publishes ``config`` retained and reads ``state`` and ``events``. Versions only go forward, a
document the schema refuses leaves the last good one running, and a section that needs the
register restarted waits for the open sale to be paid.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from protocols.codec import encode
from protocols.messages import DesiredConfig, Event, Message, State
from protocols.store_config import key_hashes, parse_store_config
from protocols.topics import Channel, device_topic
from protocols.vocabulary import EventKind
from tests.edge.agent.agent_harness import ControlPlane, control_plane
from tests.edge.agent.agent_process import AgentProcess
from tests.harness.services import Mosquitto, wait_until
from tests.harness.store_config import PINS, store_config_doc

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 300  # only against hangs (a loaded machine starts a register in tens of seconds)
MILK = "7610200000019"


async def publish(broker_url: str, device_id: str, version: int, doc: dict[str, Any]) -> None:
    """What the control plane does: the desired configuration, retained."""
    host, port = broker_url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port), identifier=f"pub-{uuid.uuid4().hex[:8]}") as client:
        payload = encode(DesiredConfig(version=version, doc=doc))
        await client.publish(device_topic(device_id, Channel.CONFIG), payload, qos=1, retain=True)


class Seen:
    """Everything the control plane received, kept: state and events interleave in any order."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.messages: list[Message] = []

    async def find(self, predicate: Callable[[Message], bool]) -> Message:
        for message in self.messages:
            if predicate(message):
                return message
        while True:
            message = await self.cp.inbox.get()
            self.messages.append(message)
            if predicate(message):
                return message

    async def state_at(self, version: int) -> State:
        found = await self.find(lambda m: isinstance(m, State) and m.config_version == version)
        assert isinstance(found, State)
        return found

    async def event(self, kind: str, version: int) -> Event:
        found = await self.find(
            lambda m: isinstance(m, Event) and m.kind == kind and m.body.get("version") == version
        )
        assert isinstance(found, Event)
        return found

    def versions(self) -> set[int]:
        return {m.config_version for m in self.messages if isinstance(m, State)}


class Kiosk:
    """The register's kiosk API, as the touchscreen calls it."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.post(f"/api/{path}", json=body)
        answer: dict[str, Any] = response.json()
        assert response.status_code == 200, answer
        return answer

    async def state(self) -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
                body: dict[str, Any] = (await client.get("/api/state")).json()
        except httpx.TransportError:
            return None
        return body


@pytest.fixture
async def appliance(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[AgentProcess]:
    process = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=f"reg-{uuid.uuid4().hex[:10]}",
        broker_url=mosquitto.url,
        # a loaded machine must not make a slow register look hung: restarts here are ours
        agent={"state_interval_s": 60.0, "heartbeat_timeout_s": 60.0, "start_timeout_s": 180.0},
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def store_named(kiosk: Kiosk, name: str) -> bool:
    doc = await kiosk.state()
    return doc is not None and doc.get("register", {}).get("store") == name


def applied_version(appliance: AgentProcess) -> int:
    version: int = json.loads((appliance.data_dir / "config" / "applied.json").read_text())[
        "version"
    ]
    return version


async def test_versions_go_forward_and_a_refused_document_keeps_the_last_good(
    appliance: AgentProcess, mosquitto: Mosquitto
) -> None:
    kiosk = Kiosk(appliance.kiosk_port)
    device = appliance.device_id
    async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device) as cp:
        seen = Seen(cp)
        await wait_until(lambda: store_named(kiosk, "Bahnhofstrasse 12, Zürich"), timeout=180)
        demo_pid = appliance.register_pids()

        v2 = store_config_doc()
        await publish(mosquitto.url, device, 2, v2)
        state = await seen.state_at(2)
        assert state.config_hashes == key_hashes(parse_store_config(v2))
        assert (await seen.event(EventKind.CONFIG_APPLIED, 2)).body["how"] == "restart"
        await wait_until(lambda: store_named(kiosk, "Lindenhof Bakery"), timeout=180)
        assert appliance.register_pids() != demo_pid  # the first configuration: a new start

        await publish(
            mosquitto.url, device, 1, store_config_doc(store={**v2["store"], "name": "Old"})
        )
        v3 = store_config_doc(receipt={"footer": ["Closed on Sundays"]})
        pid = appliance.register_pids()
        await publish(mosquitto.url, device, 3, v3)
        state = await seen.state_at(3)
        assert 1 not in seen.versions()  # v1 came first and was ignored
        assert state.config_hashes == key_hashes(parse_store_config(v3))
        assert (await seen.event(EventKind.CONFIG_APPLIED, 3)).body == {
            "version": 3,
            "how": "live",
            "changed": ["receipt"],
        }
        assert appliance.register_pids() == pid  # a live section: no restart
        assert await store_named(kiosk, "Lindenhof Bakery")

        bad = store_config_doc()
        bad["staff"]["members"][0]["pin_hash"] = "2468"
        await publish(mosquitto.url, device, 4, bad)
        refused = await seen.event(EventKind.CONFIG_REFUSED, 4)
        assert refused.body["key"] == "staff"
        assert refused.body["path"] == "staff.members[0].pin_hash"
        assert refused.body["running"] == 3
        assert applied_version(appliance) == 3
        assert await store_named(kiosk, "Lindenhof Bakery")
    log = appliance.agent_log.read_text()
    assert "config 4 refused at staff.members[0].pin_hash" in log
    assert "config 1 applied" not in log


async def test_a_restart_section_waits_for_the_open_sale_to_be_paid(
    appliance: AgentProcess, mosquitto: Mosquitto
) -> None:
    kiosk = Kiosk(appliance.kiosk_port)
    device = appliance.device_id
    async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device) as cp:
        seen = Seen(cp)
        await publish(mosquitto.url, device, 2, store_config_doc())
        await seen.state_at(2)
        await wait_until(lambda: store_named(kiosk, "Lindenhof Bakery"), timeout=180)
        await kiosk.post("signin", {"employee_id": "C01", "pin": PINS["C01"]})
        await kiosk.post("shift/open", {"amount_minor": 10000})
        sale = await kiosk.post("scan", {"code": MILK})
        cart_id = sale["state"]["register"]["cart"]["id"]
        pid = appliance.register_pids()

        await publish(
            mosquitto.url,
            device,
            5,
            store_config_doc(printer={"connector": "none", "paper_width_mm": 58}),
        )
        await wait_until(
            lambda: "config 5 waits for a safe point" in appliance.agent_log.read_text(),
            timeout=180,
            what="the agent to wait for the open sale",
        )
        waiting = next(
            line
            for line in appliance.agent_log.read_text().splitlines()
            if "config 5 waits for a safe point" in line
        )
        assert "open" in waiting  # the register's reason: a sale (and its update lease)
        assert appliance.register_pids() == pid
        assert applied_version(appliance) == 2
        doc = await kiosk.state()
        assert doc is not None
        assert doc["register"]["cart"]["count"] == 1

        await kiosk.post("pay/start", {"cart_id": cart_id})
        await kiosk.post("pay/cash", {"received_minor": 200, "cart_id": cart_id})
        state = await seen.state_at(5)
        assert state.config_version == 5
        assert (await seen.event(EventKind.CONFIG_APPLIED, 5)).body["how"] == "restart"
        await wait_until(lambda: appliance.register_pids() not in ([], pid), timeout=180)
    assert len(appliance.logged_sales()) == 1  # the sale was booked before the restart
