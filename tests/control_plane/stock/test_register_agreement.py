"""A real register replicating to the real ingest: its own on-hand and the cloud's agree for its
store, on SQLite and PostgreSQL.

The register (ledger, register service and its HTTP API, replicator over a real Mosquitto) sells
by scanning, takes a return against the receipt, sends goods to another store and books a
transfer in through its stock API; a delivery and a count are journaled as the goods-in desk and
the RFID count do. The cloud's catalog is the register's (the demo catalog), so both map the
sales' item ids to the same GTINs. When the cloud has every record, the two projections are
equal, and the transfer sent is in transit, in neither store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from control_plane.catalog.schemas import CatalogItem
from control_plane.catalog.service import upsert_items
from control_plane.stock import service as stock
from control_plane.tenancy import TenantScope
from edge.ledger import Ledger
from edge.pos.store_config import DEMO_CATALOG
from edge.replication.replicator import Replicator
from edge.stock.movements import STOCK_COUNT_COMMITTED, STOCK_RECEIVED, received_body
from protocols.broker_url import parse_broker_url
from tests.edge.kiosk.conftest import Rig, start_rig
from tests.harness.appliance import FAST
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services]

DEVICE = "reg-stock-agree"
MILK, YOGHURT, CABLE = "7610200000019", "7610201000025", "5000395000253"
#: The register's catalog, which the cloud's tenant gets too.
CATALOG = [
    CatalogItem.model_validate(i) for i in json.loads(Path(DEMO_CATALOG).read_text())["items"]
]


@pytest.fixture
async def till(
    tmp_path: Path, cloud: Cloud, mosquitto: Mosquitto
) -> AsyncIterator[tuple[Rig, httpx.AsyncClient]]:
    await cloud.register(DEVICE)
    assert cloud.engine is not None
    await upsert_items(cloud.engine, tenant_id=TENANT, items=CATALOG)
    async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
        replicator = Replicator(
            ledger=ledger, device_id=DEVICE, broker=parse_broker_url(mosquitto.url), settings=FAST
        )
        replicating = asyncio.create_task(replicator.run(), name="test-replicator")
        rig = await start_rig(tmp_path, connected=replicator.connected, ledger=ledger)
        try:
            async with httpx.AsyncClient(base_url=rig.url, timeout=30) as client:
                yield rig, client
        finally:
            await rig.stack.aclose()
            replicating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replicating


async def _ok(client: httpx.AsyncClient, path: str, body: object) -> dict[str, object]:
    answer = await client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


async def _sell(client: httpx.AsyncClient, *codes: str) -> None:
    for code in codes:
        await _ok(client, "/api/scan", {"code": code})
    await _ok(client, "/api/pay/start", {})
    await _ok(client, "/api/pay/cash", {"received_minor": 100_000})
    await _ok(client, "/api/sale/new", {})


async def test_the_registers_on_hand_and_the_clouds_agree(
    till: tuple[Rig, httpx.AsyncClient], cloud: Cloud
) -> None:
    rig, client = till
    await _ok(client, "/api/signin", {"employee_id": "E01", "pin": "1234"})
    await _ok(client, "/api/shift/open", {"amount_minor": 10_000})
    await rig.ledger.append_event(STOCK_RECEIVED, received_body({MILK: 24, CABLE: 5}))
    await _sell(client, MILK, MILK, YOGHURT)  # receipt 1
    lines = [{"gtin": "0" + CABLE, "expected": 5, "counted": 3, "variance": -2}]
    await rig.ledger.append_event(STOCK_COUNT_COMMITTED, {"session_id": "C1", "lines": lines})
    await _sell(client, CABLE)
    found = await _ok(client, "/api/returns/lookup", {"receipt": "1"})
    sale = found["sale"]
    assert isinstance(sale, dict)
    milk_line = sale["lines"][0]["line_id"]
    await _ok(client, "/api/returns", {"receipt": "1", "quantities": {str(milk_line): "1"}})
    sent = await _ok(
        client, "/api/stock/transfers/send", {"to_store": "s-other", "lines": {MILK: 6}}
    )
    await _ok(
        client,
        "/api/stock/transfers/receive",
        {"transfer_id": "T-from-elsewhere", "from_store": "s-other", "lines": {YOGHURT: 10}},
    )
    register = (await client.get("/api/stock/on-hand")).json()
    assert register == {
        "0" + MILK: 24 - 2 + 1 - 6,
        "0" + YOGHURT: -1 + 10,
        "0" + CABLE: 3 - 1,
    }

    last = rig.ledger.last_seq

    async def replicated() -> bool:
        return await cloud.hwm(DEVICE) >= last

    await wait_until(replicated, timeout=60, what="every record in the cloud")
    assert cloud.engine is not None
    scope = TenantScope(TENANT)
    levels = await stock.on_hand(cloud.engine, scope=scope, store_id=STORE)
    assert {x.gtin: x.on_hand for x in levels} == register
    assert {x.gtin: x.item_id for x in levels}["0" + MILK] == "I00001"
    assert await stock.in_transit(cloud.engine, scope=scope) == {"0" + MILK: 6}
    (transfer,) = [
        t
        for t in await stock.transfers(cloud.engine, scope=scope)
        if t.transfer_id == sent["transfer_id"]
    ]
    assert (transfer.state, transfer.from_store, transfer.to_store) == (
        "in_transit",
        STORE,
        "s-other",
    )
