"""A store that is not the demo store, end to end: enrolled, configured by the cloud, selling.

Real everything: the control plane served by uvicorn with its fleet CA, its links (ingest and the
configuration it publishes) on Mosquitto's mTLS service listener; this store's own catalog, tax
table, address, receipt header and cashier set IN THE CONTROL PLANE (no demo value anywhere); the
appliance enrolled with the code an operator printed, then ``python -m edge.agent`` starting the
register from a production settings file that names no store at all (no ``store_file``, no
``simulate``, no preset: the card terminal and the ESC/POS printer are simulators on the ports the
file names, as real devices on the store's network would be). The store's rules reach the
register only through the configuration the agent receives and applies
(``<data_dir>/config/applied.json``). A cashier in Chromium sells once by card, once by cash: the
receipts on screen and on paper name this store and its address, the terminal charged the card
sale, the kiosk shows none of the demo's words, and both sales reach the cloud once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from control_plane.configuration import service, staff
from control_plane.configuration.layers import Layer
from control_plane.configuration.staff import StaffView
from control_plane.operators.audit import Actor
from edge.checkout.barcodes import gs1_check_digit
from edge.checkout.payment_terminal_sim import PaymentTerminalSimulator
from edge.enrolment.first_boot import enrol_from_qr
from edge.peripherals.printer.preview import interpret
from edge.peripherals.printer.simulator import PrinterSimulator
from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE
from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import (
    STORE,
    TENANT,
    Fleet,
    MtlsBroker,
    served_fleet,
)
from tests.edge.enrolment.cloud_rig import cloud_sales, scanned_qr
from tests.edge.kiosk.conftest import keypad, screenshots, sign_in, tap, wedge_scan
from tests.harness.services import free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
GUARD_S = 180  # only against hangs
#: How long the page may take to show what it must (Playwright's 5 s default is a timed
#: assertion: a scan on a machine with four test workers per core can take longer).
WAIT_MS = GUARD_S * 1000
NAME, STREET, TOWN = "Seeblick Markt", "Uferweg 7", "6300 Zug"
TAX_NUMBER, HEADER, PIN = "CHE-987.654.321 MWST", "Frisch vom See seit 1987", "2580"
OPERATOR = Actor(actor="ops@seeblick.example", via="cli")
IDENTITY = {
    "id": STORE,
    "name": NAME,
    "address": {"lines": [STREET], "postcode": "6300", "city": "Zug", "country": "CH"},
    "tax_number": TAX_NUMBER,
}
CURRENCY = {"code": "CHF", "exponent": 2, "cash_increment_minor": 5}
TAX = {"classes": [{"code": "R", "rate": "0.026", "label": "MWST reduziert"}]}
HOURS = {"time_zone": "Europe/Zurich", "week": {"mon": [{"opens": "07:00", "closes": "19:00"}]}}


def _gtin13(n: int) -> str:
    body = f"40{n:010d}"
    return body + str(gs1_check_digit(body))


HONEY, BREAD = _gtin13(1), _gtin13(2)
OWN_CATALOG = [
    {"id": "zug-honey", "name": "Zuger Blütenhonig 250 g", "price_minor": 1190, "gtins": [HONEY]},
    {"id": "zug-bread", "name": "Kirschbrot 400 g", "price_minor": 540, "gtins": [BREAD]},
]


def demo_words() -> list[str]:
    """What would give the demo away: its store's name and address lines, its items' names."""
    demo: dict[str, Any] = json.loads(DEMO_STORE.read_text())
    items = json.loads(DEMO_CATALOG.read_text())["items"]
    return [demo["store_name"], *demo["receipt_header"], *(i["name"] for i in items)]


@pytest.fixture
async def fleet(
    database_url: str, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker, tmp_path: Path
) -> AsyncIterator[Fleet]:
    async with served_fleet(
        database_url=database_url,  # SQLite and PostgreSQL (tests/conftest.py)
        # the app's own links (ingest, configuration) on the devices' broker, as deployed
        ingest_broker_url=mtls_broker.service_url,
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
        identity_dir=tmp_path / "cp-identity",
    ) as running:
        items = [{"tax_class": "R", "department": "grocery", **i} for i in OWN_CATALOG]
        seeded = await running.api.post(
            "/api/catalog/items", json={"tenant_id": TENANT, "items": items}
        )
        assert seeded.status_code == 200, seeded.text
        yield running


async def configure_store(fleet: Fleet) -> StaffView:
    """This store's rules in the control plane's layers; returns its cashier."""
    engine = fleet.engine
    for layer, target, key, value in (
        (Layer.TENANT, TENANT, "currency", CURRENCY),
        (Layer.TENANT, TENANT, "tax", TAX),
        (Layer.TENANT, TENANT, "hours", HOURS),
        (Layer.STORE, STORE, "store", IDENTITY),
        (Layer.STORE, STORE, "receipt", {"header": [HEADER], "footer": []}),
    ):
        await service.set_setting(
            engine, actor=OPERATOR, layer=layer, target=target, key=key, value=value
        )
    cashier = await staff.add_staff(
        engine, actor=OPERATOR, store_id=STORE, name="Lina", role="cashier", pin=PIN
    )
    link = getattr(fleet.app.state, "config_link", None)
    if link is not None:
        link.poke()
    return cashier


def production_settings(
    workdir: Path, *, printer: PrinterSimulator, terminal: PaymentTerminalSimulator, port: int
) -> Path:
    """The appliance's two settings files, as an installer writes them; returns the agent's.

    Devices and where the register listens; nothing about the store (it comes configured)."""
    register = {
        "kiosk": {"port": port},
        "terminal": {"host": terminal.host, "port": terminal.port},
        "peripherals": {
            "printer": {"connector": "network", "host": "127.0.0.1", "port": printer.port}
        },
        "replication": {"ack_timeout_s": 1.0, "backoff_max_s": 0.5},
        "log": {"format": "json"},
    }
    (workdir / "register.json").write_text(json.dumps(register))
    agent = {
        "identity_dir": str(workdir / "identity"),
        "data_dir": str(workdir / "data"),
        "register_settings": str(workdir / "register.json"),
        "metrics_port": free_port(),
    }
    (workdir / "agent.json").write_text(json.dumps(agent))
    return workdir / "agent.json"


async def test_a_store_that_is_not_the_demo_sells_by_card_and_cash_and_replicates(
    browser: Browser, fleet: Fleet, tmp_path: Path
) -> None:
    cashier = await configure_store(fleet)
    created = await fleet.create_enrolment(register_name="till 1")
    enrolled = await enrol_from_qr(
        await scanned_qr(fleet, created), identity_dir=tmp_path / "identity"
    )
    port = free_port()
    async with (
        PrinterSimulator() as printer,
        PaymentTerminalSimulator() as terminal,
    ):
        settings = production_settings(tmp_path, printer=printer, terminal=terminal, port=port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
        with (tmp_path / "agent.log").open("ab") as log:
            agent = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "edge.agent", "--settings", str(settings)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env | {"PYTHONPATH": str(ROOT)},
                cwd=ROOT,
            )
        url = f"http://127.0.0.1:{port}"
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
        try:
            async with asyncio.timeout(GUARD_S):

                async def ready() -> bool:
                    try:
                        async with httpx.AsyncClient() as client:
                            return (await client.get(url + "/healthz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(ready, timeout=GUARD_S, what="the register ready to sell")
                page: Page = await context.new_page()
                await page.goto(url)
                await sign_in(page, employee=cashier.id, pin=PIN)
                await page.get_by_test_id("screen-shift").wait_for()
                await keypad(page, "100")
                await tap(page, "open-shift")
                await page.get_by_test_id("screen-sale").wait_for()
                receipt = page.get_by_test_id("receipt")
                # by card
                await wedge_scan(page, HONEY)
                await wedge_scan(page, BREAD)
                total = page.get_by_test_id("total")
                await expect(total).to_have_text("CHF 17.30", timeout=WAIT_MS)
                await tap(page, "pay")
                await tap(page, "pay-card")
                await expect(receipt).to_contain_text("Receipt 1-000001", timeout=WAIT_MS)
                await expect(receipt).to_contain_text(STREET, timeout=WAIT_MS)
                await expect(receipt).to_contain_text(TAX_NUMBER, timeout=WAIT_MS)
                await expect(receipt).to_contain_text("Card", timeout=WAIT_MS)
                await screenshots(page, "own-store-card-receipt")
                card_screen = await page.locator("body").inner_text()
                # by cash
                await tap(page, "new-sale")
                await wedge_scan(page, BREAD)
                await expect(total).to_have_text("CHF 5.40", timeout=WAIT_MS)
                await tap(page, "pay")
                await tap(page, "pay-cash-exact")
                await expect(receipt).to_contain_text("Receipt 1-000002", timeout=WAIT_MS)
                await expect(receipt).to_contain_text(NAME, timeout=WAIT_MS)
                await expect(page.get_by_test_id("backlog")).to_have_attribute(
                    "data-backlog", "0", timeout=WAIT_MS
                )  # replicated and acked: on a busy machine that can take longer than 5 s
                await screenshots(page, "own-store-cash-receipt")
                shown = card_screen + "\n" + await page.locator("body").inner_text()
                async with httpx.AsyncClient(base_url=url) as client:
                    found = (await client.get("/api/search", params={"q": "e"})).json()
                card_paper, cash_paper = await printer.wait_for_jobs(2)

                async def both_stored() -> bool:
                    return len(await cloud_sales(fleet, enrolled.device_id)) >= 2

                await wait_until(both_stored, timeout=GUARD_S, what="both sales in the cloud")
                stored = await cloud_sales(fleet, enrolled.device_id)
        finally:
            await context.close()
            agent.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                code = await agent.wait()
    applied = json.loads((tmp_path / "data" / "config" / "applied.json").read_text())
    assert applied["doc"]["store"]["name"] == NAME  # the store came through the agent
    assert not (tmp_path / "data" / "store.json").exists()
    printed: list[str] = []
    for paper, total in ((card_paper, "17.30"), (cash_paper, "5.40")):
        lines = interpret(bytes(paper.data)).text_lines
        for words in (NAME, STREET, TOWN, TAX_NUMBER, HEADER, total):
            assert any(words in line for line in lines), (words, lines)
        printed += lines
    assert terminal.charged_minor == 1730  # the card sale, and only it
    assert [store for store, _sale in stored] == [STORE, STORE]  # this store's, once each
    assert Counter(sale for _store, sale in stored).most_common(1)[0][1] == 1
    everything = "\n".join([shown, json.dumps(found), *printed])
    assert [word for word in demo_words() if word in everything] == []
    assert code == 0
