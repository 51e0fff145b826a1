"""A device's presence write that waits on the database does not hold up other devices' journals.

Regression: the receiving loop awaited each heartbeat's, status's and state's database write
itself, so every journal batch that arrived behind one waited for it (on a busy machine, the
p99 of replication lag). Here a heartbeat's write is held on a row lock for as long as the test
likes; another device's batch must still be stored meanwhile.
"""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select, text

from control_plane.devices.tables import devices
from protocols.codec import encode
from protocols.journal_wire import batch_bytes
from protocols.messages import Telemetry
from protocols.topics import Channel, device_topic
from tests.control_plane.ingest.test_bad_input import good_records
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_heartbeat_waiting_on_a_lock_does_not_hold_up_another_devices_batch(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    await cloud.register("reg-beat")
    await cloud.register("reg-sale")
    records = await good_records(tmp_path / "edge.db", 3)
    assert cloud.engine is not None
    async with (
        cloud.engine.connect() as locker,
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="tester") as client,
    ):
        transaction = await locker.begin()
        await locker.execute(
            select(devices.c.id).where(devices.c.id == "reg-beat").with_for_update()
        )
        beat = Telemetry(ts=1, backlog=0, last_seq=0, lag_ms=None)
        await client.publish(device_topic("reg-beat", Channel.TELEMETRY), encode(beat), qos=1)

        async def heartbeat_waits_on_the_lock() -> bool:
            # from a connection of its own: a transaction sees one snapshot of the statistics
            assert cloud.engine is not None
            async with cloud.engine.connect() as probe:
                rows = await probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        " AND query LIKE 'UPDATE devices%'"
                    )
                )
                return bool(rows.scalar_one())

        await wait_until(heartbeat_waits_on_the_lock, what="the heartbeat's write to wait")
        await client.publish(
            device_topic("reg-sale", Channel.JOURNAL), batch_bytes(records, sent_at=0), qos=1
        )
        await wait_until(lambda: cloud.hwm("reg-sale"), what="the batch behind the heartbeat")
        assert await heartbeat_waits_on_the_lock()  # still held: the batch did not wait for it
        await transaction.rollback()
    assert await cloud.hwm("reg-sale") == 3
