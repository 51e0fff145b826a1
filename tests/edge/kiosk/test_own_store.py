"""A store that is not the demo store, end to end: enrolled, started by its agent, selling.

Real everything: the control plane served by uvicorn with its fleet CA and this fleet's own
catalog (no demo item in it), Mosquitto on the mTLS listener with the control plane's ingest,
the appliance enrolled with the code an operator printed, then ``python -m edge.agent`` starting
the register from a production settings file (no ``simulate``, no preset: the card terminal and
the ESC/POS printer are simulators on the ports the file names, as real devices on the store's
network would be), and a cashier in Chromium. The receipt on paper must name this store and its
address, the kiosk must show none of the demo's, and the sale must reach the cloud once.

The store document (name, address, tax table, staff) is the per-store file the settings name:
the configuration the agent applies from the control plane (edge/agent/configuration/) takes its
place when an operator has set one; this test does not depend on that path.
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

from control_plane.ingest.worker import IngestWorker
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
from tests.edge.enrolment.cloud_rig import cloud_sales, mtls_ingest, scanned_qr
from tests.edge.kiosk.conftest import screenshots, sign_in_and_open_shift, tap, wedge_scan
from tests.harness.services import Mosquitto, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
GUARD_S = 180  # only against hangs
NAME, ADDRESS, TAX_NUMBER = "Seeblick Markt", "Uferweg 7, 6300 Zug", "CHE-987.654.321 MWST"


def _gtin13(n: int) -> str:
    body = f"40{n:010d}"
    return body + str(gs1_check_digit(body))


HONEY, BREAD = _gtin13(1), _gtin13(2)
OWN_CATALOG = [
    {"id": "zug-honey", "name": "Zuger Blütenhonig 250 g", "price_minor": 1190, "gtins": [HONEY]},
    {"id": "zug-bread", "name": "Kirschbrot 400 g", "price_minor": 540, "gtins": [BREAD]},
]


def own_store_document() -> dict[str, Any]:
    """This store's rules: its name, address and tax number; the demo's tax table and staff."""
    document: dict[str, Any] = json.loads(DEMO_STORE.read_text())
    return document | {
        "store_name": NAME,
        "receipt_header": [NAME, ADDRESS, TAX_NUMBER],
    }


def demo_words() -> list[str]:
    """What would give the demo away: its store's name and address lines, its items' names."""
    demo: dict[str, Any] = json.loads(DEMO_STORE.read_text())
    items = json.loads(DEMO_CATALOG.read_text())["items"]
    return [demo["store_name"], *demo["receipt_header"], *(i["name"] for i in items)]


@pytest.fixture
async def fleet(
    mosquitto: Mosquitto, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker, tmp_path: Path
) -> AsyncIterator[Fleet]:
    async with served_fleet(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
    ) as running:
        items = [{"tax_class": "B", "department": "grocery", **i} for i in OWN_CATALOG]
        seeded = await running.api.post(
            "/api/catalog/items", json={"tenant_id": TENANT, "items": items}
        )
        assert seeded.status_code == 200, seeded.text
        yield running


@pytest.fixture
async def ingest(
    fleet: Fleet, mtls_broker: MtlsBroker, fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[IngestWorker]:
    async with mtls_ingest(
        fleet,
        broker_url=mtls_broker.service_url,
        ca=fleet_ca,
        identity_dir=tmp_path / "cp-identity",
    ) as worker:
        yield worker


def production_settings(
    workdir: Path, *, printer: PrinterSimulator, terminal: PaymentTerminalSimulator, port: int
) -> Path:
    """The appliance's two settings files, as an installer writes them; returns the agent's."""
    store_file = workdir / "store.json"
    store_file.write_text(json.dumps(own_store_document()))
    register = {
        "store_file": str(store_file),
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


async def test_a_store_that_is_not_the_demo_sells_prints_its_address_and_replicates(
    browser: Browser,
    fleet: Fleet,
    ingest: IngestWorker,
    fleet_ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
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
                await sign_in_and_open_shift(page)
                await wedge_scan(page, HONEY)
                await wedge_scan(page, BREAD)
                await expect(page.get_by_test_id("total")).to_have_text("CHF 17.30")
                await tap(page, "pay")
                await tap(page, "pay-cash-exact")
                await expect(page.get_by_test_id("receipt")).to_contain_text(
                    "Receipt 1-000001", timeout=GUARD_S * 1000
                )
                await expect(page.get_by_test_id("receipt")).to_contain_text(ADDRESS)
                await expect(page.get_by_test_id("backlog")).to_have_attribute(
                    "data-backlog", "0", timeout=GUARD_S * 1000
                )  # replicated and acked: on a busy machine that can take longer than 5 s
                await screenshots(page, "own-store-receipt")
                shown = await page.locator("body").inner_text()
                async with httpx.AsyncClient(base_url=url) as client:
                    found = (await client.get("/api/search", params={"q": "e"})).json()
                (paper,) = await printer.wait_for_jobs(1)
                stored = await cloud_sales(fleet, enrolled.device_id)
        finally:
            await context.close()
            agent.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                code = await agent.wait()

    printed = interpret(bytes(paper.data)).text_lines
    assert any(NAME in line for line in printed), printed
    assert any(ADDRESS in line for line in printed), printed
    assert any("17.30" in line for line in printed), printed
    assert [store for store, _sale in stored] == [STORE]  # this store's, once
    assert Counter(sale for _store, sale in stored).most_common(1)[0][1] == 1
    everything = "\n".join([shown, json.dumps(found), *printed])
    assert [word for word in demo_words() if word in everything] == []
    assert code == 0
