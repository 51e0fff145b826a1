"""A record the cloud cannot store: the device is flagged with why, the appliance raises its alarm.

The defect: a sale committed with currency ``EURO`` (before the settings refused it) could never be
stored in PostgreSQL; the cloud logged an error and sent no ack, the appliance resent the same
batch for ever, and the console showed the chain green. Now the cloud answers with ``error``, the
device row is flagged with the reason (what the console shows), and the appliance pauses with its
alarm raised, keeping every sale in its ledger.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from control_plane.devices.service import get_device
from edge.ledger.sales import journal_body
from edge.simulated_register import RingSettings, random_sale, ring_sales
from protocols.vocabulary import JournalKind
from tests.harness.appliance import InProcessAppliance
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

DEVICE = "reg-refused"


def refusals() -> float:
    return (
        REGISTRY.get_sample_value(
            "storefleet_edge_replication_refusals_total", {"device_id": DEVICE}
        )
        or 0.0
    )


def alarm() -> float | None:
    return REGISTRY.get_sample_value("storefleet_edge_replication_refused", {"device_id": DEVICE})


def euro_sale_body() -> dict[str, object]:
    """A sale as an appliance with STOREFLEET_EDGE_CURRENCY=EURO committed it before the fix."""
    body = journal_body(
        random_sale(random.Random(5), currency="EUR"), receipt_no=3, register_id="1"
    )
    body["currency"] = "EURO"
    return body


async def test_a_record_the_cloud_cannot_store_flags_the_device_and_raises_the_alarm(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    await cloud.register(DEVICE)
    before = refusals()
    async with InProcessAppliance(
        device_id=DEVICE, ledger_path=tmp_path / "edge.db", broker_url=mosquitto.url
    ) as appliance:
        ledger = appliance.ledger
        await ring_sales(ledger, RingSettings(rate=0, count=2, seed=1))
        await ledger.append_event(JournalKind.SALE_COMPLETED, euro_sale_body())  # seq 3
        await ring_sales(ledger, RingSettings(rate=0, count=2, seed=2))
        appliance.start_replication()
        replicator = appliance.replicator
        assert replicator is not None

        await wait_until(lambda: replicator.refusal is not None, what="the cloud's refusal")
        # resent after its pause and refused again: paused each time, never a tight loop
        await wait_until(lambda: refusals() >= before + 2, what="a second refusal")
        await ring_sales(ledger, RingSettings(rate=0, count=1, seed=3))  # selling goes on

        assert replicator.refusal is not None
        assert replicator.refusal.startswith(
            "seq 3: the cloud cannot store it: sale.completed body"
        )
        assert "currency" in replicator.refusal
        assert alarm() == 1
        assert ledger.acked_seq == 2  # the sales before it are in the cloud
        assert ledger.last_seq == 6  # and every sale is still in the ledger, waiting

    assert await cloud.hwm(DEVICE) == 2
    assert cloud.engine is not None
    device = await get_device(cloud.engine, device_id=DEVICE)
    # what the console shows: flagged, with the reason the appliance was given
    assert device["chain_ok"] is False
    assert device["chain_detail"] == replicator.refusal
    assert device["chain_alerts"] >= 2
