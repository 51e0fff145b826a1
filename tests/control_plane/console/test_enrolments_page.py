"""The enrolments page in real headless Chromium: create, read the QR back, revoke, refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Locator, Page, expect

from control_plane.operators.principal import Role
from control_plane.provisioning import service
from provisioning.device_keys import DeviceIdentity
from provisioning.enrolment import parse_qr
from tests.control_plane.provisioning.fleet_harness import (
    OTHER_STORE,
    STORE,
    TENANT,
    make_ca,
    served_fleet,
)
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.control_plane import Session, served_control_plane
from tests.harness.scan import read_qr_codes
from tests.harness.services import Mosquitto

pytestmark = [pytest.mark.services, pytest.mark.browser]


def _qr_texts(png: bytes) -> list[str]:
    return read_qr_codes(png)


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


OPERATOR = "ops@acme.example"


async def _page(browser: Browser, url: str, session: Session) -> Page:
    """A page of a browser the operator logged in with."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    await context.add_cookies([session.cookie(url)])
    return await context.new_page()


async def _create(page: Page, *, store_id: str, register_name: str, hours: str) -> Locator:
    """Fill and submit the form; the panel that shows the new enrolment."""
    await page.get_by_label("Store").select_option(store_id)
    await page.get_by_label("Register name").fill(register_name)
    await page.get_by_label("Valid for").select_option(hours)
    await page.get_by_role("button", name="Create enrolment").click()
    await expect(page.locator("#enrolment-result")).to_contain_text(f"created for {store_id}")
    return page.locator("#created")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_enrolment_created_shown_as_qr_revoked_and_refused_through_the_page(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path / "ca")
    async with (
        served_fleet(
            database_url=database_url, ingest_broker_url=mosquitto.url, ca_directory=ca.directory
        ) as fleet,
        chromium() as browser,
    ):
        # An enrolment that expired yesterday, so the table shows every state.
        await service.create_enrolment(
            engine=fleet.engine,
            authority=fleet.authority,
            tenant_id=TENANT,
            store_id=STORE,
            created_by="night-shift",
            ttl=timedelta(hours=1),
            now=service.utc_now() - timedelta(days=2),
        )
        page = await _page(browser, fleet.url, await fleet.log_in(OPERATOR, Role.OPERATOR))
        page.on("dialog", _accept)
        await page.goto(fleet.url + "/")
        await page.get_by_role("link", name="Enrolments").click()
        await expect(page).to_have_url(fleet.url + "/enrolments")
        await expect(page.locator("#enrolments .badge.expired")).to_have_count(1)

        panel = await _create(page, store_id=OTHER_STORE, register_name="till 7", hours="72")
        enrolment_id = await panel.get_attribute("data-enrolment")
        assert enrolment_id is not None
        qr = panel.locator("img.qr")
        await expect(qr).to_have_js_property("complete", value=True)
        source = await qr.get_attribute("src")
        assert source == f"/api/enrolments/{enrolment_id}/qr.png"
        fetched = await page.request.get(fleet.url + source)
        assert fetched.headers["content-type"] == "image/png"
        texts = _qr_texts(await fetched.body())
        assert texts == _qr_texts(await qr.screenshot())  # the image as the browser painted it
        payload = parse_qr(texts[0])
        assert (payload.tenant_id, payload.store_id) == (TENANT, OTHER_STORE)
        assert payload.ca_fingerprint == ca.fingerprint
        stored = await fleet.enrolment(enrolment_id)
        assert (stored["state"], stored["register_name"], stored["created_by"]) == (
            "pending",
            "till 7",
            OPERATOR,  # the logged-in operator, not what the page sends
        )
        await expect(panel.locator("#created-expires")).to_have_text(
            stored["expires_at"][:16].replace("T", " ") + " UTC"
        )
        assert (await panel.locator("#fallback-code").text_content() or "").strip()
        sheet = await page.request.get(
            fleet.url
            + (await panel.get_by_role("link", name="Printable sheet").get_attribute("href") or "")
        )
        assert (sheet.headers["content-type"], (await sheet.body())[:5]) == (
            "application/pdf",
            b"%PDF-",
        )
        row = page.locator(f'#enrolments tr[data-enrolment="{enrolment_id}"]')
        await expect(row.locator("td.state")).to_have_text("pending")
        await expect(row).to_contain_text(f"by {OPERATOR}")

        await row.get_by_role("button", name="Revoke").click()
        await expect(page.locator("#enrolment-result")).to_have_text(
            f"enrolment {enrolment_id} revoked"
        )
        await expect(row.locator("td.state")).to_have_text("revoked")
        await expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
        await expect(panel).to_have_attribute("data-state", "revoked")
        await expect(panel.locator("#created-state")).to_have_text(
            "revoked this sheet no longer works"
        )
        assert (await fleet.enrolment(enrolment_id))["state"] == "revoked"

        # A register redeems the typed code while the page still offers to revoke it.
        panel = await _create(page, store_id=STORE, register_name="till 1", hours="24")
        used_id = await panel.get_attribute("data-enrolment")
        code = (await panel.locator("#fallback-code").text_content() or "").strip()
        identity = DeviceIdentity(tmp_path / "appliance")
        csr = identity.certificate_request().decode()
        enrolled = await fleet.api.post("/api/enrol", json={"fallback_code": code, "csr_pem": csr})
        assert enrolled.status_code == 200, enrolled.text
        device_id = enrolled.json()["device_id"]
        used_row = page.locator(f'#enrolments tr[data-enrolment="{used_id}"]')
        await used_row.get_by_role("button", name="Revoke").click()

        result = page.locator("#enrolment-result")
        await expect(result).to_have_class("failed")
        await expect(result).to_contain_text(f"enrolment '{used_id}' is used")
        await expect(result).to_contain_text("(enrolment_not_pending)")
        await expect(used_row.locator("td.state")).to_have_text("used")
        link = used_row.locator("td.used-by").get_by_role("link", name=device_id)
        await expect(link).to_have_attribute("href", f"/devices/{device_id}")
        await expect(panel.locator("#created-state")).to_have_text(f"used by {device_id}")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-enrolments.png", full_page=True)

        await link.click()
        await expect(page).to_have_url(f"{fleet.url}/devices/{device_id}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_page_says_what_to_set_when_provisioning_is_not_configured(
    database_url: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("STOREFLEET_CA_PASSPHRASE", "STOREFLEET_CA_DEMO"):
        monkeypatch.delenv(name, raising=False)
    async with (
        served_control_plane(database_url=database_url, broker_url=mosquitto.url) as served,
        chromium() as browser,
    ):
        async with served.client() as api:
            assert (await api.post("/api/tenants", json={"id": TENANT, "name": "Acme"})).is_success
            body = {"id": STORE, "tenant_id": TENANT, "name": "High Street"}
            assert (await api.post("/api/stores", json=body)).is_success
        session = await served.log_in(OPERATOR, Role.OPERATOR, TENANT)
        page = await _page(browser, served.url, session)
        response = await page.goto(served.url + "/enrolments")
        assert response is not None
        assert response.status == 200
        banner = page.locator("#unconfigured")
        await expect(banner).to_contain_text("Provisioning is not configured")
        await expect(banner).to_contain_text("STOREFLEET_CA_PASSPHRASE is not set")
        await expect(page.get_by_label("Store")).to_have_value(STORE)
        await expect(page.get_by_role("button", name="Create enrolment")).to_be_disabled()
        await page.screenshot(
            path=ARTIFACTS / "console-enrolments-unconfigured.png", full_page=True
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_page_shows_why_the_api_refused_to_create(
    database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with (
        served_fleet(
            database_url=database_url,
            ingest_broker_url=mosquitto.url,
            ca_directory=tmp_path / "no-ca-here",
        ) as fleet,
        chromium() as browser,
    ):
        page = await _page(browser, fleet.url, await fleet.log_in(OPERATOR, Role.OPERATOR))
        await page.goto(fleet.url + "/enrolments")
        await page.get_by_label("Store").select_option(STORE)
        await page.get_by_role("button", name="Create enrolment").click()

        result = page.locator("#enrolment-result")
        await expect(result).to_have_class("failed")
        await expect(result).to_contain_text("not created: provisioning is unavailable")
        await expect(result).to_contain_text("(ca_unavailable)")
        await expect(page.locator("#created")).to_be_hidden()
        assert (await fleet.api.get("/api/enrolments")).json() == []
