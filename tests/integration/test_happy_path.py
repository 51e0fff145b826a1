"""A sale travels from the appliance's ledger to the cloud, on Mosquitto and both SQL stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.simulated_register import RingSettings, ring_sales
from tests.harness.appliance import InProcessAppliance
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services


async def test_sales_arrive_once_with_verified_chain(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    await cloud.register("reg-happy")
    async with InProcessAppliance(
        device_id="reg-happy", ledger_path=tmp_path / "edge.db", broker_url=mosquitto.url
    ) as appliance:
        appliance.start_replication()
        committed = await ring_sales(appliance.ledger, RingSettings(rate=500, count=300, seed=1))
        await wait_until(lambda: appliance.ledger.backlog == 0, what="all sales acked")

    stored = await cloud.sale_ids("reg-happy")
    assert sorted(stored) == sorted(sale.sale_id for sale in committed)
    audit = await cloud.audit("reg-happy")
    assert audit.ok, audit.problem
    assert audit.records == 300
