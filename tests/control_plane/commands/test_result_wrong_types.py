"""A command result its command does not allow is refused; stored results always render.

Regression (issue 8): a result carrying a float (``job_id: 1.5``, a count report's totals as
floats) was stored as is; the command's summary then raised and the device page and the
commands API answered 500.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiomqtt
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert

from control_plane.commands.tables import commands
from protocols.broker_url import parse_broker_url
from protocols.topics import Channel, device_topic
from tests.harness.services import Mosquitto, wait_until

from .fleet_harness import GUARD_S, new_device_id, running_site

pytestmark = pytest.mark.services

REPORT = {
    "session_id": "count-1",
    "location": "shop floor",
    "reads": 9,
    "lines": [{"gtin": "00614141000012", "expected": 10, "counted": 9, "variance": -1}],
    "other_tags": {},
    "expected_total": 10,
    "counted_total": 9,
}


def _result(command_id: str, body: str) -> bytes:
    return f'{{"schema":"sf.cmd.result","v":1,"id":"{command_id}",{body}}}'.encode()


BAD_RESULTS = [
    pytest.param("printer.test_page", '"ok":true,"result":{"job_id":1.5}', "job_id", id="float"),
    pytest.param("printer.test_page", '"ok":true,"result":{"job_id":"41"}', "job_id", id="string"),
    pytest.param("printer.test_page", '"ok":true,"result":{"job_id":1e400}', "job_id", id="1e400"),
    pytest.param(
        "printer.test_page",
        '"ok":true,"result":{"job_id":4,"extra":NaN}',
        "extra",
        id="nan-in-an-extra-field",
    ),
    pytest.param(
        "stock_count.stop",
        '"ok":true,"result":' + json.dumps({"seq": 7, "report": REPORT | {"counted_total": 9.5}}),
        "report.counted_total",
        id="float-in-a-report",
    ),
    pytest.param(
        "drawer.open",
        '"ok":false,"result":{"seq":3},"error":"jammed"',
        "result",
        id="refusal-with-result",
    ),
]


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


@pytest.mark.parametrize(("name", "body", "where"), BAD_RESULTS)
async def test_a_result_outside_its_model_fails_the_command_with_the_reason(
    database_url: str,
    mosquitto: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    name: str,
    body: str,
    where: str,
) -> None:
    device_id = new_device_id()
    broker = parse_broker_url(mosquitto.url)
    caplog.set_level("WARNING", logger="control_plane.ingest.worker")
    before = dropped("malformed")
    args = {"session_id": "count-1"} if name == "stock_count.stop" else {}
    if name == "drawer.open":
        args = {"reason": "float check", "by": "console"}
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
        aiomqtt.Client(broker.host, broker.port, identifier=f"{device_id}-agent") as device,
    ):
        await site.cloud.register(device_id)
        sent = await site.api.post(
            f"/api/devices/{device_id}/commands", json={"name": name, "args": args}
        )
        command_id = sent.json()["id"]
        await device.publish(
            device_topic(device_id, Channel.CMD_RESULT), _result(command_id, body), qos=1
        )
        url = f"/api/devices/{device_id}/commands/{command_id}"

        async def answered() -> bool:
            return bool((await site.api.get(url)).json()["status"] == "done")

        await wait_until(answered, what="the refused result closing the command")
        command = (await site.api.get(url)).json()
        listed = await site.api.get(f"/api/devices/{device_id}/commands")
        page = await site.api.get(f"/devices/{device_id}")
    assert dropped("malformed") == before + 1
    assert (command["ok"], command["result"]) == (False, None)
    assert command["error"].startswith("the device's answer was refused: sf.cmd.result not kept")
    assert f"{where}: " in command["error"]
    assert command["summary"].startswith("refused: the device's answer was refused")
    assert (listed.status_code, page.status_code) == (200, 200)
    assert "Traceback" not in caplog.text


#: Results stored before they were checked: each once made the summary (and the page) fail.
OLD_RESULTS = [
    pytest.param(
        "stock_count.stop",
        json.dumps({"seq": 7, "report": REPORT | {"counted_total": 9.5}}),
        "done: {'seq': 7, 'report'",
        id="float-total",
    ),
    pytest.param(
        "printer.test_page", '{"job_id": Infinity}', "done: {'job_id': 'inf'}", id="infinity"
    ),
    pytest.param("printer.test_page", "not json", "done: {'raw': 'not json'}", id="not-json"),
    pytest.param("drawer.open", "[1, 2]", "done: {'raw': [1, 2]}", id="not-an-object"),
    pytest.param(
        "stock_count.stop",
        json.dumps({"seq": 7, "report": REPORT}),
        "count count-1: counted 9, expected 10, variance -1 (journal seq 7)",
        id="a-good-one-still-reads-well",
    ),
]


@pytest.mark.parametrize(("name", "stored", "summary"), OLD_RESULTS)
async def test_results_stored_before_the_check_render_without_500(
    database_url: str, mosquitto: Mosquitto, name: str, stored: str, summary: str
) -> None:
    device_id = new_device_id()
    command_id = uuid.uuid4().hex
    now = time.time_ns() // 1_000_000
    async with (
        asyncio.timeout(GUARD_S),
        running_site(database_url=database_url, broker_url=mosquitto.url) as site,
    ):
        await site.cloud.register(device_id)
        assert site.cloud.engine is not None
        async with site.cloud.engine.begin() as conn:
            await conn.execute(
                insert(commands).values(
                    id=command_id,
                    device_id=device_id,
                    name=name,
                    args="{}",
                    created_at=now,
                    deadline_at=now + 30_000,
                    completed_at=now,
                    ok=True,
                    result=stored,
                )
            )
        one = await site.api.get(f"/api/devices/{device_id}/commands/{command_id}")
        listed = await site.api.get(f"/api/devices/{device_id}/commands")
        page = await site.api.get(f"/devices/{device_id}")
    assert (one.status_code, listed.status_code, page.status_code) == (200, 200, 200)
    assert one.json()["summary"].startswith(summary)
