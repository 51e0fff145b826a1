"""In Chromium: a cashier finds a customer by name, phone or e-mail, attaches them and earns;
with the network cut the search says it needs the network and the card still attaches.

Real parts: the kiosk in headless Chromium (the dialog's text field typed with the keyboard, taps
on the results), the register's ledger and replicator, a real Mosquitto, the served control plane
on PostgreSQL (its customers domain answers the search, its ingest books the loyalty ledger).
The register asks the cloud over HTTP as itself (its own certificate's key signs each request,
as in tests/control_plane/loyalty); "the network cut" is the broker killed and the register's
cloud address pointing at a port where nothing listens, so the refusal is a real connection error.
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
from edge.checkout.loyalty import KnownBalance
from edge.enrolment.device_auth import DeviceAuth
from edge.ledger import Ledger
from edge.pos.loyalty_client import OFFLINE_SEARCH, VAGUE_SEARCH, CloudBalances
from edge.replication.replicator import Replicator
from protocols.broker_url import parse_broker_url
from provisioning.ca import CertificateAuthority
from tests.control_plane.devices.device_harness import issued_identity
from tests.edge.kiosk.conftest import (
    Rig,
    screenshots,
    sign_in_and_open_shift,
    start_rig,
    tap,
    wedge_scan,
)
from tests.harness.appliance import FAST
from tests.harness.control_plane import ServedControlPlane, Session, served_control_plane
from tests.harness.services import (
    Mosquitto,
    create_pg_database,
    drop_pg_database,
    free_port,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.services]

TENANT, STORE, DEVICE = "acme", "acme-01", "acme-01-r1"
COFFEE = "8711000000120"  # 12.90
CABLE = "5000395000253"  # 14.90
LEA = {"name": "Lea Loyal", "phone": "+41 79 555 12 34", "email": "lea.loyal@example.com"}
LEON = {"name": "Leon Other", "phone": "+41 79 555 98 76", "email": "leon@example.com"}


class Cloud:
    """The register's way to the cloud: the control plane, or (cut) a port nobody listens on."""

    def __init__(self, *, up: CloudBalances, cut: CloudBalances) -> None:
        self.up, self.cut = up, cut
        self.reachable = True

    @property
    def now(self) -> CloudBalances:
        return self.up if self.reachable else self.cut

    async def fetch(self, customer_id: str) -> KnownBalance | None:
        return await self.now.fetch(customer_id)

    async def search(self, text: str) -> list[tuple[str, str]]:
        return await self.now.search(text)


@dataclass
class Shop:
    served: ServedControlPlane
    operator: Session
    rig: Rig
    cloud: Cloud


@pytest.fixture
async def shop(
    tmp_path: Path, mosquitto: Mosquitto, fleet_ca: CertificateAuthority
) -> AsyncIterator[Shop]:
    url = await create_pg_database()
    try:
        async with served_control_plane(database_url=url, broker_url=mosquitto.url) as served:
            engine = served.app.state.engine
            await registry.create_tenant(engine, tenant_id=TENANT, name="Acme")
            await registry.create_store(engine, store_id=STORE, tenant_id=TENANT, name="High St")
            await registry.register_device(engine, device_id=DEVICE, store_id=STORE)
            identity = tmp_path / "identity"
            await issued_identity(engine, fleet_ca, device_id=DEVICE, identity_dir=identity)
            auth = DeviceAuth(identity)
            operator = await served.log_in("operator@acme.example", Role.OPERATOR, TENANT)
            cloud = Cloud(
                up=CloudBalances(base_url=served.url, auth=auth, timeout=60.0),
                cut=CloudBalances(base_url=f"http://127.0.0.1:{free_port()}", auth=auth),
            )
            async with Ledger(tmp_path / "ledger.db", register_id="1") as ledger:
                replicator = Replicator(
                    ledger=ledger,
                    device_id=DEVICE,
                    broker=parse_broker_url(mosquitto.url),
                    settings=FAST,
                    identity_dir=identity,  # a device with a certificate signs its batches
                )
                replicating = asyncio.create_task(replicator.run(), name="test-replicator")
                rig = await start_rig(tmp_path, connected=replicator.connected, ledger=ledger)
                rig.register.loyalty.source = rig.register.loyalty.finder = cloud
                try:
                    yield Shop(served, operator, rig, cloud)
                finally:
                    await rig.stack.aclose()
                    replicating.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await replicating
                    await cloud.up.aclose()
                    await cloud.cut.aclose()
    finally:
        await drop_pg_database(url)


async def _create(shop: Shop, fields: dict[str, str]) -> dict[str, str]:
    headers = {"Cookie": f"sf_session={shop.operator.secret}", "X-CSRF-Token": shop.operator.csrf}
    async with shop.served.anonymous(headers=headers) as operator:
        made = await operator.post("/api/customers", json=fields)
    assert made.status_code == 201, made.text
    created: dict[str, str] = made.json()
    return created


async def _search(page: Page, text: str) -> None:
    """Type into the dialog's field as a keyboard does, and press Enter."""
    box = page.get_by_test_id("customer-box")
    await box.fill("")
    await box.press_sequentially(text)
    await box.press("Enter")


async def _sale_bodies(rig: Rig) -> list[dict[str, object]]:
    records = [json.loads(r.record) for r in await rig.ledger.read_records(1, 100)]
    return [r["body"] for r in records if r["kind"] == "sale.completed"]


async def test_a_cashier_finds_a_customer_by_name_phone_and_email_and_the_sale_earns(
    browser: Browser, shop: Shop, mosquitto: Mosquitto
) -> None:
    lea = await _create(shop, LEA)
    leon = await _create(shop, LEON)
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    page = await context.new_page()
    await page.goto(shop.rig.url)
    await sign_in_and_open_shift(page)

    await tap(page, "customer-open")
    dialog = page.get_by_test_id("modal")
    hits = dialog.get_by_test_id("customer-hit")
    await _search(page, "L")  # one letter: the cloud refuses, the cashier reads what to type
    await expect(dialog.get_by_test_id("customer-error")).to_have_text(VAGUE_SEARCH)
    await expect(page.get_by_test_id("alert")).to_be_hidden()
    await _search(page, "Le")  # both customers' names begin so
    await expect(hits).to_have_count(2)
    await expect(dialog.get_by_test_id("customer-error")).to_have_text("")
    await dialog.get_by_test_id("customer-box").fill("")
    for key in ["l", "e", "a", "space", "l", "o"]:  # the on-screen keys, by touch
        await tap(page, f"type-{key}")
    await expect(dialog.get_by_test_id("customer-box")).to_have_value("lea lo")
    await tap(page, "customer-find")
    await expect(hits).to_have_count(1)
    await expect(hits).to_contain_text("Lea L.")  # masked, as the cloud answers a register
    await expect(hits).not_to_contain_text("Loyal")
    await expect(hits).to_contain_text(lea["id"])
    await _search(page, LEON["phone"])
    await expect(hits).to_have_count(1)
    await expect(hits).to_contain_text(leon["id"])
    await _search(page, LEA["email"])
    await expect(hits).to_have_count(1)
    await expect(hits).to_contain_text(lea["id"])
    await _search(page, "nobody@example.com")
    await expect(dialog.get_by_test_id("customer-none")).to_be_visible()
    await _search(page, LEA["phone"])
    await expect(hits).to_have_count(1)
    await screenshots(page, "customer-search")
    await hits.tap()
    await expect(page.get_by_test_id("modal")).to_be_hidden()
    panel = page.get_by_test_id("customer")
    await expect(panel.get_by_test_id("customer-id")).to_have_text(lea["id"])
    await expect(panel.get_by_test_id("customer-points")).to_have_text("0 points")
    await expect(panel.get_by_test_id("customer-offline")).to_have_count(0)  # asked the cloud

    await tap(page, "customer-open")  # the wrong one? take them off, and put them back
    await expect(dialog.get_by_test_id("customer-now")).to_contain_text(lea["id"])
    await tap(page, "customer-detach")
    await expect(panel).to_be_hidden()
    await tap(page, "customer-open")
    await expect(dialog.get_by_test_id("customer-detach")).to_be_hidden()
    await _search(page, LEA["email"])
    await hits.tap()
    await expect(panel.get_by_test_id("customer-id")).to_have_text(lea["id"])

    await wedge_scan(page, COFFEE)
    await wedge_scan(page, CABLE)
    await expect(page.get_by_test_id("line")).to_have_count(2)
    await screenshots(page, "customer-attached")
    await tap(page, "pay")
    await tap(page, "pay-cash-exact")
    await expect(page.get_by_test_id("screen-receipt")).to_be_visible()
    sale = (await _sale_bodies(shop.rig))[-1]
    assert sale["customer_id"] == lea["id"]
    assert sale["loyalty"]["points_earned"] == 27  # type: ignore[index]
    engine = shop.served.app.state.engine

    async def booked() -> bool:
        try:
            view = await loyalty.balance(engine, scope=TenantScope(TENANT), customer_id=lea["id"])
        except loyalty.CustomerBalanceNotFound:
            return False
        return view.points == 27

    await wait_until(booked, timeout=60, what="the earned points in the cloud's ledger")

    mosquitto.kill()  # the network goes: no replication, no search, no balance from the cloud
    shop.cloud.reachable = False
    await tap(page, "new-sale")
    await tap(page, "customer-open")
    await _search(page, "lea loyal")
    await expect(dialog.get_by_test_id("customer-error")).to_have_text(OFFLINE_SEARCH)
    await expect(hits).to_have_count(0)
    await screenshots(page, "customer-search-offline")
    await tap(page, "customer-close")
    await wedge_scan(page, lea["card"])  # the card's QR, read offline
    await expect(panel.get_by_test_id("customer-id")).to_have_text(lea["id"])
    await expect(panel.get_by_test_id("customer-points")).to_have_text("27 points")
    await expect(panel.get_by_test_id("customer-offline")).to_contain_text("up to 27 points")
    await context.close()
