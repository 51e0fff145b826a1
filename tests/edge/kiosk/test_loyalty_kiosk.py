"""In Chromium: a cashier attaches a customer by scanning their loyalty QR, earns points, redeems
them on the next sale with the network cut; an operator sees the customer's history.

Real parts: the kiosk in headless Chromium (keyboard-wedge scans, as the other kiosk tests), the
register's ledger and replicator, a real Mosquitto, the served control plane on PostgreSQL
(its ingest books the loyalty ledger; its console shows the customer page). The register's
balance source asks the control plane's device-route function in this process (its HTTPS and
refusals are tested in tests/control_plane/loyalty); "the network cut" is the broker killed and
that source refusing, as an unreachable cloud does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from control_plane.devices import service as registry
from control_plane.loyalty import service as loyalty
from control_plane.operators.principal import Role
from control_plane.tenancy import TenantScope
from edge.ledger import Ledger
from edge.replication.replicator import Replicator
from protocols.broker_url import parse_broker_url
from tests.edge.kiosk.conftest import Rig, sign_in_and_open_shift, start_rig, tap, wedge_scan
from tests.harness.appliance import FAST
from tests.harness.control_plane import ServedControlPlane, Session, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, wait_until
from tests.integration.test_loyalty_two_stores import CloudLookup, Network

pytestmark = [pytest.mark.browser, pytest.mark.services]

TENANT, STORE, DEVICE = "acme", "acme-01", "acme-01-r1"
COFFEE = "8711000000120"  # 12.90
CABLE = "5000395000253"  # 14.90


@dataclass
class Shop:
    served: ServedControlPlane
    operator: Session
    rig: Rig
    network: Network


@pytest.fixture
async def shop(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Shop]:
    url = await create_pg_database()
    try:
        async with served_control_plane(database_url=url, broker_url=mosquitto.url) as served:
            engine = served.app.state.engine
            await registry.create_tenant(engine, tenant_id=TENANT, name="Acme")
            await registry.create_store(engine, store_id=STORE, tenant_id=TENANT, name="High St")
            await registry.register_device(engine, device_id=DEVICE, store_id=STORE)
            operator = await served.log_in("operator@acme.example", Role.OPERATOR, TENANT)
            network = Network()
            async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
                replicator = Replicator(
                    ledger=ledger,
                    device_id=DEVICE,
                    broker=parse_broker_url(mosquitto.url),
                    settings=FAST,
                )
                replicating = asyncio.create_task(replicator.run(), name="test-replicator")
                rig = await start_rig(tmp_path, connected=replicator.connected, ledger=ledger)
                rig.register.loyalty.source = CloudLookup(engine, DEVICE, network, tenant_id=TENANT)
                try:
                    yield Shop(served, operator, rig, network)
                finally:
                    await rig.stack.aclose()
                    replicating.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await replicating
    finally:
        await drop_pg_database(url)


async def _sale_bodies(rig: Rig) -> list[dict[str, object]]:
    records = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)]
    return [r["body"] for r in records if r["kind"] == "sale.completed"]


async def test_a_cashier_earns_by_qr_and_redeems_offline_and_an_operator_sees_it(
    browser: Browser, shop: Shop, mosquitto: Mosquitto
) -> None:
    async with shop.served.anonymous(
        headers={"Cookie": f"sf_session={shop.operator.secret}", "X-CSRF-Token": shop.operator.csrf}
    ) as operator:
        made = await operator.post("/api/customers", json={"name": "Lea Loyal"})
    assert made.status_code == 201, made.text
    customer = made.json()
    card = customer["card"]  # what the printed QR holds: SFC1:<id>

    context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    page: Page = await context.new_page()
    await page.goto(shop.rig.url)
    await sign_in_and_open_shift(page)
    await wedge_scan(page, card)  # the 2D scanner reads the card's QR like any barcode
    first = page.get_by_test_id("customer")
    await expect(first.get_by_test_id("customer-id")).to_have_text(customer["id"])
    await expect(first.get_by_test_id("customer-tier")).to_have_text("Member")
    await wedge_scan(page, COFFEE)
    await wedge_scan(page, CABLE)
    await expect(page.get_by_test_id("line")).to_have_count(2)
    await tap(page, "pay")
    await tap(page, "pay-cash-exact")
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    engine = shop.served.app.state.engine
    scope = TenantScope(TENANT)

    async def booked() -> bool:
        try:
            view = await loyalty.balance(engine, scope=scope, customer_id=customer["id"])
        except loyalty.CustomerBalanceNotFound:
            return False
        return view.points == 27

    await wait_until(booked, timeout=60, what="the earned points in the cloud")

    mosquitto.kill()  # the network goes: no replication, no balance from the cloud
    shop.network.up = False
    await wedge_scan(page, card)
    panel = page.get_by_test_id("customer")
    await expect(panel.get_by_test_id("customer-points")).to_have_text("27 points")
    await expect(panel.get_by_test_id("customer-offline")).to_contain_text("up to 27 points")
    await wedge_scan(page, CABLE)
    await tap(page, "pay")
    await tap(page, "pay-points")
    await expect(page.get_by_test_id("tender-loyalty_points")).to_contain_text("0.27")
    await tap(page, "pay-cash-exact")
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    offline = (await _sale_bodies(shop.rig))[-1]
    assert offline["customer_id"] == customer["id"]
    assert offline["loyalty"]["points_burned"] == 27  # type: ignore[index]

    mosquitto.start()
    shop.network.up = True
    await wait_until(lambda: shop.rig.ledger.backlog == 0, timeout=60, what="the offline sale")

    admin = await browser.new_context(viewport={"width": 1280, "height": 800})
    await admin.add_cookies([shop.operator.cookie(shop.served.url)])  # type: ignore[list-item]
    console = await admin.new_page()
    await console.goto(f"{shop.served.url}/customers/{customer['id']}")
    await expect(console.locator("#customer-sales tbody tr")).to_have_count(2)
    await expect(console.locator("#loyalty-points")).to_have_text("14")  # 27 - 27 + 14
    await expect(console.locator('#loyalty-movements tr[data-kind="burn"]')).to_have_count(1)
    await admin.close()
    await context.close()
