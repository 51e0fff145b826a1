"""An operator of one tenant in real headless Chromium on the console's stock page: the figures
come from registers' journals replicated over a real Mosquitto into the control plane's own
ingest (real ledgers and replicators, not rows written by the test), so what the page shows is
the projection of sales, a delivery and transfers as the cloud folded them.

The operator logs in, sets two low-stock thresholds through the API with the page's CSRF token,
reads on-hand per store and item, the low rows and the reorder suggestions, downloads the
on-hand and reorder CSVs and checks their rows, and never sees the other tenant's store, whose
register replicated too (in the page, the store list, the CSVs, or by naming its store).

Screenshot: artifacts/stock-1280x800.png.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Request, Route, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.catalog.schemas import CatalogItem
from control_plane.catalog.service import upsert_items
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.operators import service as operators
from control_plane.operators.gatekeeper import wall_clock_ms
from control_plane.operators.passwords import Passwords
from control_plane.operators.principal import Role
from edge.ledger import Ledger, SaleDraft, SaleLine, Tender
from edge.stock.movements import (
    STOCK_RECEIVED,
    STOCK_TRANSFER_RECEIVED,
    STOCK_TRANSFER_SENT,
    received_body,
)
from protocols.stock_transfer import TransferReceived, TransferSent
from tests.harness.appliance import InProcessAppliance
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import operator_settings, served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.browser]

OPERATOR = "stock@acme.example"
NORTH, SOUTH, OTHER = "acme-north", "acme-south", "bolt-main"
MILK, COFFEE, CABLE = "7610200000019", "7610201000025", "5000395000253"  # EAN-13
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CATALOG = [
    CatalogItem(id="I-MILK", name="Whole milk 1 l", price_minor=175, tax_class="A", gtins=[MILK]),
    CatalogItem(id="I-COFFEE", name="Coffee 500 g", price_minor=1290, tax_class="A",
                gtins=[COFFEE]),
    CatalogItem(id="I-CABLE", name="USB-C cable", price_minor=1490, tax_class="A",
                gtins=[CABLE]),
]  # fmt: skip


def g14(ean: str) -> str:
    return "0" + ean


def sale(sale_id: str, item_id: str, units: int) -> SaleDraft:
    """A cash sale of ``units`` of one catalog item, as the checkout commits it."""
    line = SaleLine(item_id, item_id, Decimal(units), 100, 100 * units)
    return SaleDraft(sale_id, "EUR", (line,), (Tender("cash", 100 * units),))


@asynccontextmanager
async def registers(
    engine: AsyncEngine, tmp_path: Path, broker_url: str, device_ids: list[str]
) -> AsyncIterator[dict[str, Ledger]]:
    """A real ledger and replicator per register, replicating to the served control plane."""
    async with AsyncExitStack() as stack:
        ledgers: dict[str, Ledger] = {}
        for device_id in device_ids:
            appliance = await stack.enter_async_context(
                InProcessAppliance(
                    device_id=device_id,
                    ledger_path=tmp_path / f"{device_id}.db",
                    broker_url=broker_url,
                )
            )
            appliance.start_replication()
            ledgers[device_id] = appliance.ledger
        yield ledgers


async def replicated(engine: AsyncEngine, ledgers: dict[str, Ledger]) -> None:
    """Wait until the cloud holds every record of every register."""

    async def all_in() -> bool:
        async with engine.connect() as conn:
            rows = await conn.execute(select(devices.c.id, devices.c.hwm))
            hwm = {str(device): int(seq or 0) for device, seq in rows}
        return all(hwm.get(d, 0) >= ledger.last_seq for d, ledger in ledgers.items())

    await wait_until(all_in, timeout=60, what="every register's records in the cloud")


async def download(page: Page, link: str) -> list[list[str]]:
    async with page.expect_download() as waiting:
        await page.click(link)
    got = await waiting.value
    return list(csv.reader(io.StringIO((await got.path()).read_text(encoding="utf-8"))))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_operator_reads_stock_across_stores_and_exports_it(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        engine: AsyncEngine = served.app.state.engine
        for tenant, stores in (("acme", [NORTH, SOUTH]), ("bolt", [OTHER])):
            await registry.create_tenant(engine, tenant_id=tenant, name=tenant.title())
            await upsert_items(engine, tenant_id=tenant, items=CATALOG)
            for store in stores:
                await registry.create_store(
                    engine, store_id=store, tenant_id=tenant, name=store.split("-")[1].title()
                )
                await registry.register_device(engine, device_id=f"{store}-r1", store_id=store)
        _, password = await operators.create_operator(
            engine, passwords=Passwords(operator_settings()), by=None, email=OPERATOR,
            role=Role.OPERATOR, tenant_id="acme", now=wall_clock_ms(),
        )  # fmt: skip

        ids = [f"{store}-r1" for store in (NORTH, SOUTH, OTHER)]
        async with registers(engine, tmp_path, mosquitto.url, ids) as ledgers:
            north, south, other = (ledgers[d] for d in ids)
            await north.append_event(STOCK_RECEIVED, received_body({MILK: 40, COFFEE: 20,
                                                                    CABLE: 5}))  # fmt: skip
            await north.record_sale(sale("n-1", "I-MILK", 3))
            for n in range(7):
                await north.record_sale(sale(f"n-c{n}", "I-COFFEE", 2))
            sent = TransferSent(transfer_id="T-1", to_store=SOUTH, lines=[{"gtin": g14(MILK),
                                "quantity": 10}])  # fmt: skip
            await north.append_event(STOCK_TRANSFER_SENT, sent.to_body())
            on_way = TransferSent(transfer_id="T-2", to_store=SOUTH, lines=[{"gtin": g14(CABLE),
                                  "quantity": 1}])  # fmt: skip
            await north.append_event(STOCK_TRANSFER_SENT, on_way.to_body())
            await south.append_event(STOCK_RECEIVED, received_body({MILK: 5}))
            got = TransferReceived(transfer_id="T-1", from_store=NORTH,
                                   lines=[{"gtin": g14(MILK), "quantity": 9}])  # fmt: skip
            await south.append_event(STOCK_TRANSFER_RECEIVED, got.to_body())
            await south.record_sale(sale("s-1", "I-MILK", 2))
            await other.append_event(STOCK_RECEIVED, received_body({MILK: 999}))
            await other.record_sale(sale("o-1", "I-MILK", 7))
            await replicated(engine, ledgers)

            page = await browser.new_page(
                viewport={"width": 1280, "height": 800}, accept_downloads=True
            )
            outside: list[str] = []

            async def local_only(route: Route, request: Request) -> None:
                if urlsplit(request.url).hostname in LOCAL_HOSTS:
                    await route.continue_()
                else:
                    outside.append(request.url)
                    await route.abort()

            await page.route("**/*", local_only)
            await page.goto(f"{served.url}/stock")
            await page.fill("input[name=email]", OPERATOR)
            await page.fill("input[name=password]", password)
            await page.click("button[type=submit]")
            await expect(page).to_have_url(f"{served.url}/stock")

            # thresholds through the API, as the operator, with the page's CSRF token
            token = await page.locator("#logout input[name=csrf_token]").get_attribute("value")
            assert token
            for store, gtin, threshold in ((NORTH, CABLE, 5), (SOUTH, MILK, 20)):
                answer = await page.request.put(
                    f"{served.url}/api/stock/thresholds",
                    data={"store_id": store, "gtin": g14(gtin), "low_at": threshold},
                    headers={"X-CSRF-Token": token},
                )
                assert answer.status == 200, await answer.text()
            await page.reload()

            # on-hand per store and item: deliveries less sales, transfers out and in
            levels = {
                (NORTH, MILK): ("I-MILK", 40 - 3 - 10, ""),
                (NORTH, COFFEE): ("I-COFFEE", 20 - 7 * 2, ""),
                (NORTH, CABLE): (None, 5 - 1, "5"),  # one on its way to the south store
                (SOUTH, MILK): ("I-MILK", 5 + 9 - 2, "20"),  # 9 of the 10 sent arrived
            }
            rows = page.locator("#on-hand tr[data-level]")
            await expect(rows).to_have_count(len(levels))
            for (store, gtin), (_, on_hand, low_at) in levels.items():
                row = page.locator(f'#on-hand tr[data-level="{store} {g14(gtin)}"] td')
                await expect(row.nth(3)).to_have_text(str(on_hand))
                await expect(row.nth(4)).to_have_text(low_at)
            await expect(
                page.locator(f'tr[data-level="{NORTH} {g14(MILK)}"] td').nth(2)
            ).to_have_text("I-MILK")
            # the low-stock rows: at or under their threshold, and only those
            low = page.locator("#on-hand tr.low")
            await expect(low).to_have_count(2)
            await expect(low.nth(0)).to_have_attribute("data-level", f"{NORTH} {g14(CABLE)}")
            await expect(low.nth(1)).to_have_attribute("data-level", f"{SOUTH} {g14(MILK)}")

            # reorder: the cable at its threshold, coffee short of 14 days' cover, south's milk
            # under its threshold; north's milk covers 252 days and is not on the list
            reorder = {
                (NORTH, CABLE): ["4", "0", "5", "0.00", "", "2"],
                (NORTH, COFFEE): ["6", "0", "", "0.50", "12.0", "1"],
                (SOUTH, MILK): ["12", "0", "20", "0.07", "168.0", "9"],
            }
            suggested = page.locator("#reorder tr[data-reorder]")
            await expect(suggested).to_have_count(len(reorder))
            for (store, gtin), cells in reorder.items():
                row = page.locator(f'#reorder tr[data-reorder="{store} {g14(gtin)}"] td')
                await expect(row).to_have_text([store, g14(gtin), *row_item(levels, store, gtin),
                                                 *cells])  # fmt: skip

            # transfers: T-1 received one short, T-2 still on its way
            t1 = page.locator('tr[data-transfer="T-1"]')
            await expect(t1).to_have_attribute("data-state", "received")
            await expect(t1.locator(".difference")).to_have_text("(-1)")
            await expect(page.locator('tr[data-transfer="T-2"]')).to_have_attribute(
                "data-state", "in_transit"
            )

            # nothing of the other tenant: its store, its figures, its transfers
            main = page.locator("#stock-page")
            await expect(main).not_to_contain_text(OTHER)
            await expect(main).not_to_contain_text("992")
            await expect(page.locator("#stock-store option")).to_have_text(
                ["every store", f"North ({NORTH})", f"South ({SOUTH})"]
            )
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "stock-1280x800.png", full_page=True)

            # the CSV exports hold the same rows as the page
            on_hand_csv = await download(page, "#csv-on-hand")
            assert on_hand_csv[0] == ["Store", "GTIN", "Item", "On hand", "Low at"]
            assert sorted(on_hand_csv[1:]) == sorted(
                [store, g14(gtin), item or "", str(n), low_at]
                for (store, gtin), (item, n, low_at) in levels.items()
            )
            reorder_csv = await download(page, "#csv-reorder")
            assert reorder_csv[0][-1] == "Order"
            assert reorder_csv[1:] == [
                [store, g14(gtin), *row_item(levels, store, gtin), *cells]
                for (store, gtin), cells in reorder.items()
            ]

            # one store chosen in the form: only its rows; the other tenant's store is a 404
            await page.select_option("#stock-store", SOUTH)
            await page.click("#stock-filter button[type=submit]")
            await expect(page).to_have_url(f"{served.url}/stock?store_id={SOUTH}")
            await expect(page.locator("#on-hand tr[data-level]")).to_have_count(1)
            south_csv = await download(page, "#csv-on-hand")
            assert [r[0] for r in south_csv[1:]] == [SOUTH]
            refused = await page.goto(f"{served.url}/stock?store_id={OTHER}")
            assert refused is not None
            assert refused.status == 404
            answer = await page.request.get(f"{served.url}/api/stock/on-hand.csv?gtin={g14(MILK)}")
            assert answer.status == 200
            stores = [r[0] for r in csv.reader(io.StringIO(await answer.text()))]
            assert stores[1:] == [NORTH, SOUTH]
            assert outside == []


def row_item(
    levels: dict[tuple[str, str], tuple[str | None, int, str]], store: str, gtin: str
) -> list[str]:
    """The item column of a store's GTIN as the page and the CSV write it."""
    return [levels[(store, gtin)][0] or ""]
