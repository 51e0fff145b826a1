"""Bad input on the journal topics: counted, logged with the reason, dropped; the worker goes on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import REGISTRY

from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from protocols.journal_wire import batch_bytes
from protocols.topics import Channel, device_topic
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


def chain_breaks() -> float:
    return REGISTRY.get_sample_value("storefleet_ingest_chain_breaks_total") or 0.0


async def good_records(path: Path, count: int) -> list[str]:
    async with Ledger(path, register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=count, seed=9))
        return [record.record for record in await ledger.read_records(1, count)]


def tamper(record: str) -> str:
    data = json.loads(record)
    data["body"]["total_minor"] += 100  # a cent here and there: exactly what the chain catches
    return json.dumps(data, separators=(",", ":"))


BAD_PAYLOADS = [
    pytest.param(b"{not json", "malformed", "not JSON", id="malformed-json"),
    pytest.param(
        b'{"schema":"sf.journal","v":2,"records":[]}',
        "unsupported_version",
        "version 2 is not supported",
        id="wrong-schema-version",
    ),
    pytest.param(
        b'{"schema":"sf.status","v":1,"state":"online"}',
        "malformed",
        "expected schema 'sf.journal'",
        id="wrong-schema",
    ),
    pytest.param(b"[" * 5_000_000, "too_large", "exceeds the limit", id="huge-payload"),
    pytest.param(
        b'{"schema":"sf.journal","v":1,"records":[{"seq":0}]}',
        "malformed",
        "invalid at records",
        id="invalid-record",
    ),
]


@pytest.mark.parametrize(("payload", "reason", "logged"), BAD_PAYLOADS)
async def test_bad_payload_is_counted_logged_dropped_and_worker_continues(
    cloud: Cloud,
    mosquitto: Mosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    reason: str,
    logged: str,
) -> None:
    await cloud.register("reg-bad")
    records = await good_records(tmp_path / "edge.db", 5)
    before = dropped(reason)
    caplog.set_level(logging.WARNING, logger="control_plane.ingest.worker")
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="reg-bad") as device:
        topic = device_topic("reg-bad", Channel.JOURNAL)
        await device.publish(topic, payload, qos=1)
        await device.publish(topic, batch_bytes(records, sent_at=0), qos=1)
        await wait_until(lambda: cloud.hwm("reg-bad"), what="the good batch after the bad one")
    assert dropped(reason) == before + 1
    assert logged in caplog.text
    assert len(await cloud.sale_ids("reg-bad")) == 5


async def test_batch_for_unknown_device_is_dropped(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await cloud.register("reg-known")
    records = await good_records(tmp_path / "edge.db", 3)
    before = dropped("unknown_device")
    caplog.set_level(logging.WARNING, logger="control_plane.ingest.worker")
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="tester") as client:
        await client.publish(
            device_topic("reg-stranger", Channel.JOURNAL), batch_bytes(records, sent_at=0), qos=1
        )
        await client.publish(
            device_topic("reg-known", Channel.JOURNAL), batch_bytes(records, sent_at=0), qos=1
        )
        await wait_until(lambda: cloud.hwm("reg-known"), what="the known device's batch")
    assert dropped("unknown_device") == before + 1
    assert "'reg-stranger' is not registered" in caplog.text
    assert await cloud.sale_ids("reg-stranger") == []


async def test_record_whose_hash_does_not_match_is_refused_and_flagged(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await cloud.register("reg-tamper")
    records = await good_records(tmp_path / "edge.db", 6)
    forged = [*records[:3], tamper(records[3]), *records[4:]]
    before = chain_breaks()
    caplog.set_level(logging.WARNING, logger="control_plane.ingest.worker")
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="reg-tamper") as device:
        topic = device_topic("reg-tamper", Channel.JOURNAL)
        await device.publish(topic, batch_bytes(forged, sent_at=0), qos=1)
        await wait_until(lambda: cloud.hwm("reg-tamper"), what="the records before the forgery")
        assert await cloud.hwm("reg-tamper") == 3
        # the genuine records, resent, are accepted: the forgery was dropped, not the device
        await device.publish(topic, batch_bytes(records[3:], sent_at=0), qos=1)
        await wait_until(_hwm_is(cloud, "reg-tamper", 6), what="the genuine records")
    assert chain_breaks() == before + 1
    assert "seq 4: hash does not match the record's content" in caplog.text
    device_row = await _device(cloud, "reg-tamper")
    assert device_row["chain_ok"] is False  # flagged until an operator has looked at it
    assert device_row["chain_alerts"] == 1
    assert (await cloud.audit("reg-tamper")).ok


def _hwm_is(cloud: Cloud, device_id: str, target: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await cloud.hwm(device_id) == target

    return check


async def _device(cloud: Cloud, device_id: str) -> dict[str, object]:
    from control_plane.devices.service import get_device

    assert cloud.engine is not None
    return dict(await get_device(cloud.engine, device_id=device_id))
