"""First boot in real Chromium: scan or type the enrolment code, watch it enrol, sell, replicate.

Real everything: the register as the appliance runs it (`run_register` with an identity
directory and no certificate), the control plane served by uvicorn with its fleet CA
(`served_fleet`), Mosquitto on its mTLS listener with the per-device ACL (`MtlsBroker`), the
control plane's ingest on that broker with its own certificate, and the QR read back from the
PNG the control plane prints (zxing). A keyboard-wedge scanner is `keyboard.type` + Enter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from control_plane.ingest.worker import IngestWorker
from edge.enrolment.first_boot import enrol_from_qr, load_enrolment
from edge.enrolment.settings import EnrolmentSettings
from edge.register.compose import run_register
from edge.register.demo import DEMO_SETTINGS
from edge.register.settings import load_register_settings
from edge.replication.replicator import ReplicationSettings
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import DeviceIdentity, IdentityState
from provisioning.enrolment import encode_qr, parse_qr
from tests.control_plane.provisioning.fleet_harness import (
    STORE,
    Fleet,
    MtlsBroker,
    seed_demo_catalog,
    served_fleet,
)
from tests.edge.enrolment.cloud_rig import cloud_sales, mtls_ingest, scanned_qr
from tests.edge.kiosk.conftest import (
    keypad,
    screenshots,
    sign_in_and_open_shift,
    tap,
    wedge_scan,
)
from tests.harness.services import Mosquitto, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.services]

MILK = "7610200000019"  # 1.75
FAST = ReplicationSettings(ack_timeout=1.0, backoff_initial=0.05, backoff_max=0.5)


@pytest.fixture
async def fleet(
    mosquitto: Mosquitto, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker, tmp_path: Path
) -> AsyncIterator[Fleet]:
    async with served_fleet(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
        ingest_broker_url=mosquitto.url,  # the app's own plain ingest idles there
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
    ) as running:
        await seed_demo_catalog(running)  # an enrolled register syncs it (device-authenticated)
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


@dataclass
class Appliance:
    """A register that starts like the appliance image: an identity directory, maybe empty."""

    url: str
    identity_dir: Path


@contextlib.asynccontextmanager
async def appliance(
    tmp_path: Path,
    fleet: Fleet,
    ca: CertificateAuthority,
    *,
    peripherals: bool = False,
) -> AsyncIterator[Appliance]:
    """`run_register` until the block ends (then stopped as on SIGTERM); same dirs each time."""
    identity_dir = tmp_path / "identity"
    port = free_port()
    stop = asyncio.Event()
    settings = load_register_settings(  # the demo's store document and catalog seed
        DEMO_SETTINGS,
        environ={},
        identity_dir=identity_dir,
        data_dir=tmp_path / "till",
        kiosk={"port": port},
        peripherals={"preset": "simulated" if peripherals else "none"},
    )
    codes = EnrolmentSettings(
        control_plane_url=fleet.url, ca_fingerprint=ca.fingerprint, identity_dir=identity_dir
    )
    task = asyncio.create_task(
        run_register(settings, replication=FAST, code_settings=codes, stop=stop),
        name="first-boot-register",
    )
    url = f"http://127.0.0.1:{port}"

    async def serving() -> bool:
        assert not task.done(), task.exception()
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(url + "/api/state")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await wait_until(serving, what="the kiosk to serve")
        yield Appliance(url=url, identity_dir=identity_dir)
    finally:
        stop.set()
        await task


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    yield await context.new_page()
    await context.close()


async def enrolled_device(page: Page, identity_dir: Path) -> str:
    """Wait for the sign-in screen's "enrolled as" note; the device id the identity holds."""
    await expect(page.get_by_test_id("screen-signin")).to_be_visible()
    done = load_enrolment(identity_dir)
    assert done is not None
    await expect(page.get_by_test_id("enrolled-note")).to_contain_text(
        f"Enrolled as {done.device_id} for High Street"
    )
    return done.device_id


async def test_a_scanned_qr_enrols_the_register_which_then_sells_to_the_cloud(
    page: Page,
    fleet: Fleet,
    ingest: IngestWorker,
    fleet_ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
    created = await fleet.create_enrolment(register_name="till 1")
    qr = await scanned_qr(fleet, created)
    async with appliance(tmp_path, fleet, fleet_ca, peripherals=True) as till:
        await page.goto(till.url)
        await expect(page.get_by_test_id("screen-enrol")).to_contain_text(
            "This register is not enrolled yet"
        )
        await screenshots(page, "first-boot-01-scan")

        await wedge_scan(page, qr)
        device_id = await enrolled_device(page, till.identity_dir)
        await expect(page.get_by_test_id("link-badge")).to_have_attribute("data-online", "true")
        await screenshots(page, "first-boot-02-enrolled")

        await sign_in_and_open_shift(page)
        await wedge_scan(page, MILK)
        await tap(page, "pay")
        await tap(page, "pay-cash-exact")
        await expect(page.get_by_test_id("receipt")).to_contain_text("Receipt 1-000001")
        await expect(page.get_by_test_id("backlog")).to_have_attribute("data-backlog", "0")
        stored = await cloud_sales(fleet, device_id)

    assert [store for store, _sale in stored] == [STORE]
    assert DeviceIdentity(till.identity_dir).state() is IdentityState.ENROLLED


async def test_the_code_typed_on_the_keypad_enrols_the_register(
    page: Page, fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment(register_name="till 2")
    async with appliance(tmp_path, fleet, fleet_ca) as till:
        await page.goto(till.url)
        await tap(page, "enrol-type")
        await keypad(page, "C")  # on this pad C is a letter of the code, not "clear"
        await expect(page.get_by_test_id("code-entry")).to_have_text("C")
        await keypad(page, "⌫")
        await keypad(page, created["fallback_code"].replace("-", ""))
        await expect(page.get_by_test_id("code-entry")).to_have_text(created["fallback_code"])
        await screenshots(page, "first-boot-03-typed-code")
        await tap(page, "pad-enter-code")

        device_id = await enrolled_device(page, till.identity_dir)

    enrolment = await fleet.enrolment(created["enrolment"]["id"])
    assert (enrolment["state"], enrolment["device_id"]) == ("used", device_id)


async def test_a_used_code_is_refused_on_screen_and_the_register_stays_on_first_boot(
    page: Page, fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    qr = await scanned_qr(fleet, created)
    await enrol_from_qr(qr, identity_dir=tmp_path / "another-appliance")
    async with appliance(tmp_path, fleet, fleet_ca) as till:
        await page.goto(till.url)
        await wedge_scan(page, qr)

        refusal = page.get_by_test_id("enrol-refusal")
        await expect(refusal).to_have_attribute("data-reason", "token_used")
        await expect(refusal).to_contain_text("ask an operator for a new enrolment")
        await expect(page.locator('#enrol-steps li[data-step="requesting"]')).to_have_class(
            "failed"
        )
        await screenshots(page, "first-boot-04-refused")
        await expect(page.get_by_test_id("screen-enrol")).to_be_visible()
        async with httpx.AsyncClient(base_url=till.url) as client:
            selling = await client.post("/api/scan", json={"code": MILK})

    assert selling.status_code == 503
    assert DeviceIdentity(till.identity_dir).state() is not IdentityState.ENROLLED


async def test_after_a_restart_the_saved_identity_goes_straight_to_selling(
    page: Page,
    fleet: Fleet,
    ingest: IngestWorker,
    fleet_ca: CertificateAuthority,
    tmp_path: Path,
) -> None:
    created = await fleet.create_enrolment()
    qr = await scanned_qr(fleet, created)
    async with appliance(tmp_path, fleet, fleet_ca) as till:
        await page.goto(till.url)
        await wedge_scan(page, qr)
        device_id = await enrolled_device(page, till.identity_dir)

    async with appliance(tmp_path, fleet, fleet_ca) as restarted:
        await page.goto(restarted.url)
        await expect(page.get_by_test_id("screen-signin")).to_be_visible()
        await expect(page.get_by_test_id("enrolled-note")).to_be_hidden()
        await expect(page.get_by_test_id("link-badge")).to_have_attribute("data-online", "true")
        await sign_in_and_open_shift(page)
        await wedge_scan(page, MILK)
        await tap(page, "pay")
        await tap(page, "pay-cash-exact")
        await expect(page.get_by_test_id("receipt")).to_contain_text("Receipt 1-000001")
        await expect(page.get_by_test_id("backlog")).to_have_attribute("data-backlog", "0")
        stored = await cloud_sales(fleet, device_id)

    assert [store for store, _sale in stored] == [STORE]
    assert (await fleet.enrolment(created["enrolment"]["id"]))["device_id"] == device_id


async def test_a_qr_pinning_another_ca_is_refused_before_any_csr_is_sent(
    page: Page, fleet: Fleet, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    genuine = await scanned_qr(fleet, created)
    elsewhere = hashlib.sha256(b"some other fleet's root").hexdigest()
    forged = encode_qr(parse_qr(genuine).model_copy(update={"ca_fingerprint": elsewhere}))
    async with appliance(tmp_path, fleet, fleet_ca) as till:
        await page.goto(till.url)
        await wedge_scan(page, forged)

        refusal = page.get_by_test_id("enrol-refusal")
        await expect(refusal).to_have_attribute("data-reason", "wrong_ca")
        await expect(page.locator('#enrol-steps li[data-step="pinning"]')).to_have_class("failed")
        await screenshots(page, "first-boot-05-wrong-ca")
        untouched = DeviceIdentity(till.identity_dir).state()
        enrolment = await fleet.enrolment(created["enrolment"]["id"])

        await wedge_scan(page, genuine)  # the same appliance, the right code: still fine
        await enrolled_device(page, till.identity_dir)

    assert untouched is IdentityState.NEW  # no key was even made, so no CSR can have left
    assert enrolment["state"] == "pending"
