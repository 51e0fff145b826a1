"""A flood of malformed messages: every one counted, a handful of log lines, no traceback.

Regression (issue 8): ~4,200 malformed messages took the control plane from 115 to 616 MB (its
MQTT inbox was unbounded) and wrote 179 tracebacks. The memory figures belong to
``bench/flood.py``; here the flood is smaller and the test checks what must hold whatever the
machine's pace: each message is counted under its reason, the log stays a few lines without a
traceback, oversized payloads never reach a queue, and the worker goes on storing good batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import REGISTRY

from control_plane.ingest.drops import DropLog
from control_plane.ingest.inbox import ByteBudget, inbox_type
from edge.ledger import Ledger
from edge.simulated_register import RingSettings, ring_sales
from protocols.journal_wire import batch_bytes
from protocols.topics import Channel, device_topic
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

MB = 1024 * 1024
REASONS = (
    "malformed",
    "unsupported_version",
    "too_large",
    "unknown_device",
    "unknown_command_result",
    "overloaded",
)


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("storefleet_ingest_messages_dropped_total", {"reason": reason})
        or 0.0
    )


def _state(**printer: object) -> bytes:
    body = {"schema": "sf.state", "v": 1, "peripherals": {"receipt-printer": printer}}
    return json.dumps(body).encode()


#: (channel, registered device?, payload, the reason it is dropped for)
KINDS: list[tuple[Channel, bool, bytes, str]] = [
    (Channel.JOURNAL, True, b"{not json", "malformed"),
    (Channel.JOURNAL, True, b'{"schema":"sf.journal","v":9,"records":[]}', "unsupported_version"),
    (Channel.STATE, True, _state(last_seen="yesterday"), "malformed"),
    (Channel.STATE, True, _state(counters={"jobs": "3"}), "malformed"),
    (Channel.STATE, False, _state(connected=True), "unknown_device"),
    (
        Channel.STATUS,
        True,
        b'{"schema":"sf.status","v":1,"state":"online","versions":[]}',
        "malformed",
    ),
    (Channel.TELEMETRY, True, b'{"schema":"sf.telemetry","v":1,"ts":"now"}', "malformed"),
    (
        Channel.CMD_RESULT,
        True,
        b'{"schema":"sf.cmd.result","v":1,"id":"x","ok":true,"result":{"job_id":1.5}}',
        "unknown_command_result",
    ),
    (Channel.STATE, True, b" " * (70 * 1024), "too_large"),
]
OVERSIZED_JOURNALS = 2  # 5 MB each: over the journal's 4 MB, dropped before it is queued
FLOOD = 360


async def good_records(path: Path, count: int) -> list[str]:
    async with Ledger(path, register_id="1") as ledger:
        await ring_sales(ledger, RingSettings(rate=0, count=count, seed=3))
        return [record.record for record in await ledger.read_records(1, count)]


@pytest.mark.services
async def test_a_flood_is_counted_logged_in_a_few_lines_and_ingest_goes_on(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await cloud.register("reg-flooded")
    caplog.set_level(logging.DEBUG, logger="control_plane.ingest")
    expected = Counter(KINDS[index % len(KINDS)][3] for index in range(FLOOD))
    expected["too_large"] += OVERSIZED_JOURNALS
    before = {reason: dropped(reason) for reason in REASONS}
    records = await good_records(tmp_path / "edge.db", 4)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="flooder") as flooder:
        for _ in range(OVERSIZED_JOURNALS):
            await flooder.publish(
                device_topic("reg-flooded", Channel.JOURNAL), b"x" * (5 * MB), qos=1
            )
        for index in range(FLOOD):
            channel, registered, payload, _ = KINDS[index % len(KINDS)]
            device = "reg-flooded" if registered else f"reg-stranger-{index % 7}"
            await flooder.publish(device_topic(device, channel), payload, qos=1)

        def counted() -> bool:
            rose = sum(dropped(reason) - before[reason] for reason in REASONS)
            return rose == FLOOD + OVERSIZED_JOURNALS

        await wait_until(counted, what="every message of the flood counted")
        await flooder.publish(
            device_topic("reg-flooded", Channel.JOURNAL), batch_bytes(records, sent_at=0), qos=1
        )
        await wait_until(lambda: cloud.hwm("reg-flooded"), what="a good batch after the flood")

    rose = {reason: dropped(reason) - before[reason] for reason in REASONS}
    assert {reason: count for reason, count in rose.items() if count} == dict(expected)
    worker_lines = [r for r in caplog.records if r.name.startswith("control_plane.ingest")]
    assert not [r for r in worker_lines if r.exc_info or "Traceback" in r.getMessage()]
    # one line per reason, and at most a tally each if the flood outlasted the 10 s interval
    assert len(worker_lines) <= 2 * len(expected)
    assert {r.getMessage().split(":")[1].strip() for r in worker_lines} <= set(expected)
    assert await cloud.hwm("reg-flooded") == 4


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_drop_log_writes_one_line_per_reason_per_interval_then_a_tally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    drops = DropLog(interval=10, clock=clock)
    caplog.set_level(logging.WARNING, logger="control_plane.ingest.worker")
    before = dropped("malformed")
    for index in range(1000):
        drops.drop("malformed", f"bad message {index}")
    assert [r.getMessage() for r in caplog.records] == ["ingest: malformed: bad message 0"]
    clock.now += 10
    assert drops.flush() == 1000
    assert caplog.records[-1].getMessage() == (
        "ingest: malformed: 999 more like it in the last 10 s; the latest: bad message 999"
    )
    drops.drop("malformed", "after the flood\nFAKE LOG LINE")
    assert caplog.records[-1].getMessage() == "ingest: malformed: after the flood FAKE LOG LINE"
    assert (len(caplog.records), dropped("malformed") - before) == (3, 1001)


def message(topic: str, size: int) -> aiomqtt.Message:
    return aiomqtt.Message(topic, b"x" * size, qos=1, retain=False, mid=1, properties=None)


def test_inbox_drops_oversized_payloads_unqueued_and_sheds_beyond_its_budget() -> None:
    inbox = inbox_type(max_bytes=200 * 1024, drops=DropLog())(maxsize=3)
    journal, state = device_topic("reg-a", Channel.JOURNAL), device_topic("reg-a", Channel.STATE)
    before = {reason: dropped(reason) for reason in ("too_large", "overloaded")}
    inbox.put_nowait(message(state, 65 * 1024))  # over the state channel's 64 KiB
    inbox.put_nowait(message(journal, 5 * MB))  # over the journal's 4 MiB
    inbox.put_nowait(message(journal, 150 * 1024))
    inbox.put_nowait(message(journal, 100 * 1024))  # 250 KiB would not fit the 200 KiB budget
    inbox.put_nowait(message(state, 10))
    inbox.put_nowait(message(state, 10))
    inbox.put_nowait(message(state, 10))  # a fourth message: over maxsize
    assert (inbox.qsize(), inbox.bytes) == (3, 150 * 1024 + 20)
    inbox.get_nowait()
    assert inbox.bytes == 20
    rose = {reason: dropped(reason) - count for reason, count in before.items()}
    assert rose == {"too_large": 2, "overloaded": 2}


async def test_byte_budget_waits_for_room_and_lets_one_oversized_batch_through() -> None:
    budget = ByteBudget(100)
    first = await budget.acquire(60)
    oversized = asyncio.create_task(budget.acquire(1000))  # more than all of it: waits, then alone
    for _ in range(3):
        await asyncio.sleep(0)
    assert not oversized.done()
    await budget.release(first)
    assert (await oversized, budget.used) == (100, 100)
