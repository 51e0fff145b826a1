"""Reported state with wrong-typed fields is refused at ingest; stored rows always render.

Regression (issue 8): a retained ``state`` with ``last_seen`` as a string or ``1e400``, a list where
an object belongs or counters as strings was stored as is, and the device page and
``GET /api/devices/{id}/state`` then answered 500.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiomqtt
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert

from control_plane.devices.tables import device_state
from protocols.broker_url import parse_broker_url
from protocols.codec import encode
from protocols.messages import State
from protocols.topics import Channel, device_topic
from tests.control_plane.commands.fleet_harness import GUARD_S, new_device_id, running_site
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

#: A printer as a real hub reports it (``DeviceHealth.snapshot``).
PRINTER = {
    "device": "receipt-printer",
    "kind": "printer",
    "connected": True,
    "error": None,
    "last_seen": 1_763_700_000.5,
    "detail": {"paper": "ok"},
    "counters": {"jobs": 3},
}


def _state(**printer: object) -> bytes:
    body = {"schema": "sf.state", "v": 1, "peripherals": {"receipt-printer": PRINTER | printer}}
    return json.dumps(body).encode()


P = "peripherals.receipt-printer."
BAD_STATES = [
    pytest.param(_state(last_seen="yesterday"), P + "last_seen", id="last-seen-string"),
    pytest.param(
        _state(last_seen=0).replace(b'"last_seen": 0', b'"last_seen": 1e400'),
        P + "last_seen",
        id="last-seen-1e400",
    ),
    pytest.param(
        _state(last_seen=0).replace(b'"last_seen": 0', b'"last_seen": NaN'),
        P + "last_seen",
        id="last-seen-nan",
    ),
    pytest.param(_state(counters={"jobs": "3"}), P + "counters.jobs", id="counter-string"),
    pytest.param(_state(detail=["paper", "ok"]), P + "detail", id="list-for-object"),
    pytest.param(_state(connected="yes"), P + "connected", id="connected-string"),
    pytest.param(_state(error={"code": 7}), P + "error", id="object-for-text"),
    pytest.param(
        json.dumps({"schema": "sf.state", "v": 1, "app_release": "x" * 101}).encode(),
        "app_release",
        id="release-longer-than-its-column",
    ),
    pytest.param(
        json.dumps({"schema": "sf.state", "v": 1, "slot": "a\u0000"}).encode(),
        "slot",
        id="nul-in-slot",
    ),
]


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


@pytest.mark.parametrize(("payload", "where"), BAD_STATES)
async def test_wrong_typed_state_is_refused_counted_and_the_pages_keep_working(
    database_url: str,
    mosquitto: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    where: str,
) -> None:
    device_id = new_device_id()
    broker = parse_broker_url(mosquitto.url)
    url = f"/api/devices/{device_id}/state"
    after_it = State(slot="b", peripherals={"receipt-printer": PRINTER})
    caplog.set_level("WARNING", logger="control_plane.ingest.worker")
    before = dropped("malformed")
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
        aiomqtt.Client(broker.host, broker.port, identifier=f"{device_id}-agent") as device,
    ):
        await site.cloud.register(device_id)
        topic = device_topic(device_id, Channel.STATE)
        await device.publish(topic, payload, qos=1)
        await device.publish(topic, encode(after_it), qos=1)  # in order: the bad one came first

        async def kept() -> bool:
            return (await site.api.get(url)).status_code == 200

        await wait_until(kept, what="the good state after the bad one")
        state = await site.api.get(url)
        page = await site.api.get(f"/devices/{device_id}")
        fleet = await site.api.get("/")
    assert dropped("malformed") == before + 1
    assert f"sf.state not kept: {where}: " in caplog.text
    assert "Traceback" not in caplog.text
    assert (state.json()["slot"], page.status_code, fleet.status_code) == ("b", 200, 200)


#: What the state table held before reports were checked: each once answered 500.
OLD_ROWS = [
    pytest.param(
        {"p": PRINTER | {"last_seen": "yesterday", "counters": {"jobs": "3"}}},
        {"last_seen": None, "counters": {}},
        id="strings-for-numbers",
    ),
    pytest.param(
        {"p": PRINTER | {"last_seen": float("inf"), "detail": ["paper", "ok"]}},
        {"last_seen": None, "detail": {}},
        id="infinity-and-a-list",
    ),
    pytest.param(
        {"p": PRINTER | {"error": {"code": 7}, "detail": {"paper": {"a": 1.5}}}},
        {"error": '{"code": 7}', "detail": {"paper": '{"a": 1.5}'}},
        id="objects-for-text",
    ),
    pytest.param({"p": ["not", "an", "object"]}, {"kind": "", "connected": None}, id="list"),
]


@pytest.mark.parametrize(("peripherals", "shown"), OLD_ROWS)
async def test_rows_stored_before_the_check_render_without_500(
    database_url: str,
    mosquitto: Mosquitto,
    peripherals: dict[str, object],
    shown: dict[str, object],
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        assert site.cloud.engine is not None
        async with site.cloud.engine.begin() as conn:
            await conn.execute(
                insert(device_state).values(
                    device_id=device_id,
                    peripherals=json.dumps(peripherals),  # Python writes inf as Infinity
                    received_at=time.time_ns() // 1_000_000,
                )
            )
        state = await site.api.get(f"/api/devices/{device_id}/state")
        page = await site.api.get(f"/devices/{device_id}")
        fleet = await site.api.get("/")
    assert (state.status_code, page.status_code, fleet.status_code) == (200, 200, 200)
    printer = state.json()["peripherals"]["p"]
    assert {key: printer[key] for key in shown} == shown


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", "null"])
async def test_a_peripherals_column_that_is_not_an_object_renders_as_none(
    database_url: str, mosquitto: Mosquitto, stored: str
) -> None:
    device_id = new_device_id()
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        assert site.cloud.engine is not None
        async with site.cloud.engine.begin() as conn:
            await conn.execute(
                insert(device_state).values(device_id=device_id, peripherals=stored, received_at=0)
            )
        state = await site.api.get(f"/api/devices/{device_id}/state")
        page = await site.api.get(f"/devices/{device_id}")
    assert (state.status_code, page.status_code) == (200, 200)
    assert (state.json()["peripherals"], state.json()["problems"]) == ({}, [])
