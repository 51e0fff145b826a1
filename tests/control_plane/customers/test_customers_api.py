"""Customers through the served control plane on PostgreSQL: found by name, phone, e-mail and
card; nothing of an e-mail or phone in clear in any raw row or log line; registers see their own
tenant's customers masked; export and erasure by role, audited; an erased customer is gone from
search while their sales stay; a replicated sale's receipt is e-mailed once, to a customer who
asked for it, over SMTP. (Who may call each route: tests/control_plane/test_access_table.py.)
"""

from __future__ import annotations

import logging
import re

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers.tables import customer_receipts, customer_search_terms, customers
from control_plane.db.metadata import metadata
from control_plane.devices import service as registry
from control_plane.operators.principal import Role
from control_plane.sales.tables import sales
from tests.control_plane.customers.conftest import FOREIGN, OWN, Shop, create
from tests.control_plane.customers.journal import ingest, journal_sales, sale_body
from tests.harness.browser import ARTIFACTS, chromium
from tests.harness.services import wait_until

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


async def test_a_customer_is_found_by_name_phone_email_and_card(shop: Shop) -> None:
    anna = await create(
        shop, name="Anna Kowalska", email="Anna.K@example.org", phone="+41 79 555 01 01"
    )
    await create(shop, name="Anna Meier", email="meier@example.org", phone="044 555 02 02")

    async with shop.as_(Role.OPERATOR) as client:
        found = {
            q: [c["id"] for c in (await client.post("/api/customers/search", json={"q": q})).json()[
                "customers"
            ]]
            for q in ("anna kow", "KOWALSKA", "0795550101", "0041795550101", "anna.k@EXAMPLE.org",
                      anna["card"], anna["id"].lower())
        }  # fmt: skip
        vague = await client.post("/api/customers/search", json={"q": "a"})

    assert found == {q: [anna["id"]] for q in found}
    assert anna["card"] == f"SFC1:{anna['id']}"
    assert (anna["name"], anna["email"], anna["phone"]) == (
        "Anna Kowalska",
        "Anna.K@example.org",
        "+41 79 555 01 01",
    )
    assert vague.status_code == 400
    assert vague.json()["reason"] == "customer_search_too_vague"


async def _raw_text(engine: AsyncEngine) -> str:
    """Every row of every table as PostgreSQL prints it (bytea as hex, text as is)."""
    chunks = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table.name}" AS t'))
            chunks.extend(str(row[0]) for row in rows)
    return "\n".join(chunks)


async def test_no_raw_row_and_no_log_line_holds_an_email_or_phone_in_clear(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    email, phone = "jan.novak.secret@example.net", "+420 601 234 567"
    made = await create(
        shop,
        name="Jan Novák",
        email=email,
        phone=phone,
        consent={"email_receipts": True, "marketing": True, "via": "in_store"},
    )
    async with shop.as_(Role.TENANT_ADMIN) as client:
        assert (
            await client.post("/api/customers/search", json={"q": "601234567"})
        ).status_code == 200
        assert (await client.get(f"/api/customers/{made['id']}/export")).status_code == 200
    raw = (await _raw_text(shop.engine)).casefold()
    logged = "\n".join(record.getMessage() for record in caplog.records).casefold()

    assert made["id"].casefold() in raw  # the scan reads the customer's rows
    for needle in (email, "jan.novak.secret", "601 234 567", "601234567", "novák", "novak"):
        assert needle.casefold() not in raw, needle
        assert needle.casefold() not in logged, needle
    assert not re.search(r"601\D?234\D?567", raw + logged)


async def test_a_register_finds_its_tenants_customers_by_masked_name_only(shop: Shop) -> None:
    eva = await create(shop, name="Eva Lindqvist", email="eva@example.org", phone="0700111222")

    async with shop.register(OWN) as register:
        by_name = await register.post("/api/customers/lookup", json={"q": "eva lind"})
        by_phone = await register.post("/api/customers/lookup", json={"q": "+46 700 111 222"})
        by_card = await register.post("/api/customers/lookup", json={"q": eva["card"]})
    async with shop.register(FOREIGN) as foreign:
        theirs_by_name = await foreign.post("/api/customers/lookup", json={"q": "eva lind"})
        theirs_by_card = await foreign.post("/api/customers/lookup", json={"q": eva["card"]})
    async with shop.served.anonymous() as anonymous:
        unsigned = await anonymous.post("/api/customers/lookup", json={"q": "eva"})

    expected = [{"id": eva["id"], "display_name": "Eva L."}]
    assert by_name.json()["customers"] == expected
    assert by_phone.json()["customers"] == expected
    assert by_card.json()["customers"] == expected
    assert "eva@example.org" not in by_name.text + by_phone.text
    assert theirs_by_name.status_code == theirs_by_card.status_code == 200
    assert theirs_by_name.json()["customers"] == theirs_by_card.json()["customers"] == []
    assert unsigned.status_code == 401


async def test_viewers_and_other_tenants_are_refused(shop: Shop) -> None:
    ola = await create(shop, name="Ola Nordmann", email="ola@example.org")

    async with shop.as_(Role.VIEWER) as viewer:
        viewer_read = await viewer.get(f"/api/customers/{ola['id']}")
        viewer_list = await viewer.get("/api/customers")
    async with shop.as_(Role.OPERATOR) as operator:
        operator_export = await operator.get(f"/api/customers/{ola['id']}/export")
        operator_erase = await operator.post(f"/api/customers/{ola['id']}/erase")
        foreign_create = await operator.post(
            "/api/customers", json={"name": "X", "tenant_id": FOREIGN}
        )
    async with shop.as_(Role.TENANT_ADMIN, FOREIGN) as other:
        other_read = await other.get(f"/api/customers/{ola['id']}")
        other_export = await other.get(f"/api/customers/{ola['id']}/export")
        other_erase = await other.post(f"/api/customers/{ola['id']}/erase")
        other_search = await other.post("/api/customers/search", json={"q": "ola nordmann"})

    assert viewer_read.status_code == viewer_list.status_code == 403
    assert operator_export.status_code == operator_erase.status_code == 403
    assert foreign_create.status_code == 403
    assert other_read.status_code == other_export.status_code == other_erase.status_code == 404
    assert other_search.json()["customers"] == []
    async with shop.engine.connect() as conn:
        still = (await conn.execute(select(customers.c.erased_at).where(
            customers.c.id == ola["id"]))).scalar_one()  # fmt: skip
    assert still is None


async def test_export_and_erasure_keep_the_sales_and_are_audited(shop: Shop) -> None:
    piotr = await create(
        shop, name="Piotr Zieliński", email="piotr@example.org", phone="0601999888"
    )
    await registry.register_device(shop.engine, device_id="acme-01-r9", store_id="acme-01")
    bodies = [sale_body("s-erase-1", 1, 1250, piotr["id"]), sale_body("s-erase-2", 2, 990, None)]
    await ingest(shop.engine, "acme-01-r9", await journal_sales(shop.engine, "acme-01-r9", bodies))

    async with shop.as_(Role.TENANT_ADMIN) as admin:
        exported = await admin.get(f"/api/customers/{piotr['id']}/export")
        erased = await admin.post(f"/api/customers/{piotr['id']}/erase")
        again = await admin.post(f"/api/customers/{piotr['id']}/erase")
        after = await admin.get(f"/api/customers/{piotr['id']}")
        searches = [
            (await admin.post("/api/customers/search", json={"q": q})).json()["customers"]
            for q in ("piotr", "piotr@example.org", "0601999888")
        ]
        audit = (await admin.get("/api/audit", params={"target": piotr["id"]})).json()
    async with shop.register(OWN) as register:
        at_till = await register.post("/api/customers/lookup", json={"q": piotr["card"]})

    document = exported.json()
    assert exported.headers["content-disposition"].endswith(f'customer-{piotr["id"]}.json"')
    assert document["customer"]["email"] == "piotr@example.org"
    assert [(s["sale_id"], s["total_minor"]) for s in document["sales"]] == [("s-erase-1", 1250)]
    assert erased.status_code == 200
    assert (erased.json()["name"], erased.json()["email"], erased.json()["phone"]) == (None,) * 3
    assert again.status_code == 409
    assert after.json()["erased_at"] is not None
    assert searches == [[], [], []]
    assert at_till.json()["customers"] == []
    async with shop.engine.connect() as conn:
        row = (await conn.execute(select(customers).where(customers.c.id == piotr["id"]))).one()
        terms = (await conn.execute(select(func.count()).where(
            customer_search_terms.c.customer_id == piotr["id"]))).scalar_one()  # fmt: skip
        kept = (await conn.execute(select(sales.c.sale_id, sales.c.total_minor,
            sales.c.customer_id).where(sales.c.device_id == "acme-01-r9"))).all()  # fmt: skip
    assert (row.wrapped_key, row.sealed_profile, row.receipt_consent) == (None, None, False)
    assert terms == 0
    assert sorted(tuple(r) for r in kept) == [("s-erase-1", 1250, piotr["id"]),
                                              ("s-erase-2", 990, None)]  # fmt: skip
    assert {(e["action"], e["outcome"]) for e in audit} >= {
        ("customers:export", "ok"),
        ("customers:erase", "ok"),
    }
    assert "piotr@example.org" not in str(audit)


async def test_a_replicated_sale_emails_its_receipt_once_to_a_consenting_customer(
    shop: Shop,
) -> None:
    wants = await create(
        shop,
        name="Mia Weber",
        email="mia.receipts@example.org",
        consent={"email_receipts": True, "via": "in_store"},
    )
    declines = await create(shop, name="Max Weber", email="max.receipts@example.org")
    await registry.register_device(shop.engine, device_id="acme-01-r8", store_id="acme-01")
    bodies = [
        sale_body("s-mail-1", 7, 1250, wants["id"]),
        sale_body("s-mail-2", 8, 300, declines["id"]),
        sale_body("s-mail-3", 9, 100, None),
    ]
    batch = await journal_sales(shop.engine, "acme-01-r8", bodies)
    await ingest(shop.engine, "acme-01-r8", batch)
    redelivered = await ingest(shop.engine, "acme-01-r8", batch)  # QoS 1: the batch again

    async def settled() -> list[tuple[str, str]]:
        async with shop.engine.connect() as conn:
            rows = await conn.execute(
                select(customer_receipts.c.sale_id, customer_receipts.c.status)
                .where(customer_receipts.c.device_id == "acme-01-r8")
                .order_by(customer_receipts.c.sale_id)
            )
            found = [(row.sale_id, row.status) for row in rows]
        return found if all(status != "pending" for _, status in found) else []

    await wait_until(settled, timeout=60, what="both receipts handled by the mailer")
    outcomes = await settled()
    mails = [m for m in shop.smtp.messages if "receipts@example.org" in str(m["To"])]

    assert redelivered.duplicates == len(bodies)
    assert outcomes == [("s-mail-1", "sent"), ("s-mail-2", "skipped")]
    [mail] = mails
    assert mail["To"] == "mia.receipts@example.org"
    assert "no. 7" in mail["Subject"]
    text = mail.get_content()
    assert "Espresso beans 500 g" in text
    assert "Total CHF 12.50" in text


@pytest.mark.browser
async def test_the_console_at_1280x800_creates_finds_shows_and_erases_a_customer(
    shop: Shop,
) -> None:
    other = await create(shop, name="Lena Roth", email="lena@example.org")
    url = shop.served.url
    async with chromium() as browser:
        admin = await browser.new_context(viewport={"width": 1280, "height": 800})
        await admin.add_cookies([shop.sessions[(OWN, Role.TENANT_ADMIN)].cookie(url)])
        page = await admin.new_page()
        await page.goto(f"{url}/customers")
        await page.fill("#new-name", "Mira Brandt")
        await page.fill("#new-email", "mira.brandt@example.org")
        await page.fill("#new-phone", "+41 76 111 22 33")
        await page.check("#new-receipts")
        await page.select_option("#new-via", "in_store")
        await page.click("#create-customer")
        await expect(page).to_have_url(re.compile(r"/customers/C[0-9A-Z]{13}$"))
        customer_id = page.url.rsplit("/", 1)[1]
        await expect(page.locator("#name")).to_have_text("Mira Brandt")
        await expect(page.locator("#consent-receipts")).to_have_text("yes")
        await expect(page.locator("#consent-when")).to_contain_text("(in store)")
        await expect(page.locator("#card figcaption")).to_contain_text(f"SFC1:{customer_id}")
        qr_width = await page.locator("#card-qr").evaluate("img => img.naturalWidth")
        await expect(page.locator("#export")).to_be_visible()
        fits = await page.evaluate("document.scrollingElement.scrollWidth <= 1280")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-customer.png")

        await page.goto(f"{url}/customers")
        await page.fill("#customer-search", "076 111 22 33")
        await page.click("#search-button")
        await expect(page.locator(f'tr[data-customer="{customer_id}"]')).to_be_visible()
        searched_url = page.url

        await page.goto(f"{url}/customers/{customer_id}")
        page.once("dialog", lambda dialog: dialog.accept())
        await page.click("#erase")
        await expect(page.locator("#erased")).to_be_visible()
        await expect(page.locator("#name")).to_have_text("–")
        await expect(page.locator("#no-sales")).to_be_visible()

        operator = await browser.new_context(viewport={"width": 1280, "height": 800})
        await operator.add_cookies([shop.sessions[(OWN, Role.OPERATOR)].cookie(url)])
        as_operator = await operator.new_page()
        await as_operator.goto(f"{url}/customers/{other['id']}")
        await expect(as_operator.locator("#toggle-receipts")).to_be_visible()
        operator_buttons = await as_operator.locator("#erase, #export").count()

    assert qr_width > 0
    assert fits
    assert searched_url == f"{url}/customers"  # the phone number is in no URL
    assert operator_buttons == 0
