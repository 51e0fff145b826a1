"""Correcting a customer's name, e-mail or phone (issue 14): ``PATCH /api/customers/{id}`` on
PostgreSQL through the served control plane, and the service on SQLite. An edit changes what
search finds (the old details find no one, the new ones the customer), every search term is
rewritten, nothing of the new details is in clear in any row, the audit entry names the fields
but not their values; a viewer is refused, another tenant's customer is not found, an erased one
cannot be edited; the console's edit form saves with its CSRF token in Chromium.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.customers import service
from control_plane.customers.blind_index import profile_terms
from control_plane.customers.errors import CustomerErased, CustomerNotFound
from control_plane.customers.keyring import Keyring
from control_plane.customers.schemas import CustomerIn, ProfileChange
from control_plane.customers.tables import customer_search_terms
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.operators.principal import Role
from control_plane.operators.service import cli_actor
from control_plane.tenancy import EVERY_TENANT, TenantScope
from tests.control_plane.customers.conftest import FOREIGN, OWN, Shop, create
from tests.control_plane.customers.test_customers_api import _raw_text
from tests.harness.browser import ARTIFACTS, chromium


async def _found(shop: Shop, *texts: str) -> dict[str, list[str]]:
    """The ids each search text finds, searched by the own tenant's operator."""
    async with shop.as_(Role.OPERATOR) as client:
        return {
            q: [c["id"] for c in (await client.post("/api/customers/search", json={"q": q})).json()[
                "customers"
            ]]
            for q in texts
        }  # fmt: skip


async def _terms(engine: AsyncEngine, customer_id: str) -> int:
    async with engine.connect() as conn:
        counted = await conn.scalar(
            select(func.count()).where(customer_search_terms.c.customer_id == customer_id)
        )
    return int(counted or 0)


@pytest.mark.services
@pytest.mark.asyncio(loop_scope="module")
async def test_an_edit_changes_what_search_finds_and_keeps_no_detail_in_clear(shop: Shop) -> None:
    karl = await create(
        shop, name="Karl Huber", email="karl.old@example.org", phone="+41 79 777 11 22"
    )
    old = ("karl huber", "huber", "karl.old@example.org", "0797771122", "+41 79 777 11 22")
    new = ("karl hubn", "hubnerova", "karl.neu@example.org", "0798883344", "+41 79 888 33 44")
    assert await _found(shop, *old) == {q: [karl["id"]] for q in old}

    async with shop.as_(Role.OPERATOR) as operator:
        edited = await operator.patch(
            f"/api/customers/{karl['id']}",
            json={"name": "Karl Hubnerova", "email": "karl.neu@example.org",
                  "phone": "+41 79 888 33 44"},
        )  # fmt: skip
    async with shop.as_(Role.TENANT_ADMIN) as admin:
        audit_answer = await admin.get("/api/audit", params={"action": "customers:"})
    async with shop.register(OWN) as register:
        at_till = await register.post("/api/customers/lookup", json={"q": "079 888 33 44"})

    assert edited.status_code == 200, edited.text
    assert (edited.json()["name"], edited.json()["email"], edited.json()["phone"]) == (
        "Karl Hubnerova", "karl.neu@example.org", "+41 79 888 33 44",
    )  # fmt: skip
    assert edited.json()["card"] == karl["card"]
    assert await _found(shop, *old) == {q: [] for q in old}
    assert await _found(shop, *new, karl["card"]) == {q: [karl["id"]] for q in (*new, karl["card"])}
    assert at_till.json()["customers"] == [{"id": karl["id"], "display_name": "Karl H."}]
    # every term is the new profile's: none of the old ones is left beside them
    expected = profile_terms(
        name="Karl Hubnerova", email="karl.neu@example.org", phone="+41 79 888 33 44"
    )
    assert await _terms(shop.engine, karl["id"]) == len(expected)
    raw = (await _raw_text(shop.engine)).casefold()
    assert karl["id"].casefold() in raw  # the scan reads the customer's rows
    for needle in ("karl.neu@example.org", "karl.neu", "888 33 44", "798883344", "hubnerova",
                   "karl.old@example.org", "797771122"):  # fmt: skip
        assert needle not in raw, needle
    entries = audit_answer.json()
    edits = [e for e in entries if e["target"] == f"customer {karl['id']} profile"]
    assert [(e["action"], e["outcome"]) for e in edits] == [("customers:write", "ok")]
    assert edits[0]["after"] == {"changed": ["email", "name", "phone"]}
    for needle in ("hubnerova", "karl.neu", "888 33 44", "huber", "karl.old"):
        assert needle not in str(entries).casefold(), needle


@pytest.mark.services
@pytest.mark.asyncio(loop_scope="module")
async def test_only_the_fields_sent_change_and_null_removes_a_phone(shop: Shop) -> None:
    inge = await create(shop, name="Inge Larsen", email="inge@example.dk", phone="+45 20 11 22 33")

    async with shop.as_(Role.TENANT_ADMIN) as admin:
        no_phone = await admin.patch(f"/api/customers/{inge['id']}", json={"phone": None})
        new_email = await admin.patch(
            f"/api/customers/{inge['id']}", json={"email": "inge.l@example.dk"}
        )

    assert no_phone.status_code == new_email.status_code == 200
    assert (no_phone.json()["name"], no_phone.json()["email"], no_phone.json()["phone"]) == (
        "Inge Larsen", "inge@example.dk", None,
    )  # fmt: skip
    assert (new_email.json()["name"], new_email.json()["email"], new_email.json()["phone"]) == (
        "Inge Larsen", "inge.l@example.dk", None,
    )  # fmt: skip
    assert new_email.json()["consent"] == inge["consent"]
    found = await _found(
        shop, "+45 20 11 22 33", "inge@example.dk", "inge.l@example.dk", "inge lar"
    )
    assert found == {
        "+45 20 11 22 33": [], "inge@example.dk": [],
        "inge.l@example.dk": [inge["id"]], "inge lar": [inge["id"]],
    }  # fmt: skip


@pytest.mark.services
@pytest.mark.asyncio(loop_scope="module")
async def test_two_edits_at_once_keep_both_changes(shop: Shop) -> None:
    otto = await create(shop, name="Otto Berg", email="otto@example.se", phone="0701234567")

    async with shop.as_(Role.OPERATOR) as one, shop.as_(Role.TENANT_ADMIN) as other:
        answers = await asyncio.gather(
            one.patch(f"/api/customers/{otto['id']}", json={"name": "Otto Bergström"}),
            other.patch(f"/api/customers/{otto['id']}", json={"phone": "0707654321"}),
        )
        after = (await one.get(f"/api/customers/{otto['id']}")).json()

    assert [a.status_code for a in answers] == [200, 200]
    assert (after["name"], after["email"], after["phone"]) == (
        "Otto Bergström", "otto@example.se", "0707654321",
    )  # fmt: skip
    assert await _found(shop, "0707654321", "otto bergs", "0701234567") == {
        "0707654321": [otto["id"]], "otto bergs": [otto["id"]], "0701234567": [],
    }  # fmt: skip


@pytest.mark.services
@pytest.mark.asyncio(loop_scope="module")
async def test_viewers_other_tenants_erased_customers_and_bad_bodies_are_refused(
    shop: Shop,
) -> None:
    rut = await create(shop, name="Rut Olsen", email="rut@example.no", phone="+47 912 34 567")
    gone = await create(shop, name="Per Olsen", phone="+47 913 00 000")
    change = {"phone": "+47 999 88 777"}

    async with shop.as_(Role.VIEWER) as viewer:
        by_viewer = await viewer.patch(f"/api/customers/{rut['id']}", json=change)
    async with shop.as_(Role.TENANT_ADMIN, FOREIGN) as other:
        by_other = await other.patch(f"/api/customers/{rut['id']}", json=change)
    async with shop.as_(Role.TENANT_ADMIN) as admin:
        assert (await admin.post(f"/api/customers/{gone['id']}/erase")).status_code == 200
        erased = await admin.patch(f"/api/customers/{gone['id']}", json=change)
        bad = [
            await admin.patch(f"/api/customers/{rut['id']}", json=body)
            for body in ({}, {"name": None}, {"name": "  "}, {"email": "not an e-mail"},
                         {"phone": "12"}, {"name": "Rut", "tenant_id": FOREIGN})
        ]  # fmt: skip
        after = (await admin.get(f"/api/customers/{rut['id']}")).json()
        entries = (await admin.get("/api/audit", params={"action": "customers:"})).json()
        all_entries = (await admin.get("/api/audit")).text

    assert by_viewer.status_code == 403
    assert by_other.status_code == 404
    assert by_other.json()["reason"] == "customer_not_found"
    assert erased.status_code == 409
    assert erased.json()["reason"] == "customer_erased"
    assert [b.status_code for b in bad] == [422] * 6
    assert (after["name"], after["email"], after["phone"]) == (
        "Rut Olsen", "rut@example.no", "+47 912 34 567",
    )  # fmt: skip
    refused = [e for e in entries if e["target"] == f"customer {gone['id']} profile"]
    assert [(e["outcome"], e["reason"]) for e in refused] == [("refused", "customer_erased")]
    assert "999 88 777" not in all_entries


@pytest.mark.services
@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="module")
async def test_the_console_edit_form_corrects_a_phone_number(shop: Shop) -> None:
    lisa = await create(shop, name="Lisa Vogel", email="lisa@example.de", phone="+49 151 111 222")
    url = shop.served.url
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_cookies([shop.sessions[(OWN, Role.OPERATOR)].cookie(url)])
        page = await context.new_page()
        await page.goto(f"{url}/customers/{lisa['id']}")
        await expect(page.locator("#edit-phone")).to_have_value("+49 151 111 222")
        await page.fill("#edit-phone", "+49 151 999 000")
        await page.fill("#edit-email", "")
        await page.click("#save-profile")
        await expect(page.locator("#phone")).to_have_text("+49 151 999 000")
        await expect(page.locator("#email")).to_have_text("–")
        await expect(page.locator("#name")).to_have_text("Lisa Vogel")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "console-customer-edited.png")

        await page.fill("#edit-name", "")
        await page.click("#save-profile")  # the browser's own check keeps an empty name
        await expect(page.locator("#name")).to_have_text("Lisa Vogel")

        viewer = await browser.new_context(viewport={"width": 1280, "height": 800})
        await viewer.add_cookies([shop.sessions[(OWN, Role.VIEWER)].cookie(url)])
        as_viewer = await viewer.new_page()
        viewer_page = await as_viewer.goto(f"{url}/customers/{lisa['id']}")

    assert viewer_page is not None
    assert viewer_page.status == 403
    assert await _found(shop, "0151999000", "0151111222") == {
        "0151999000": [lisa["id"]], "0151111222": [],
    }  # fmt: skip


KEY = "a master key for the sqlite edit test, 0123"


@pytest_asyncio.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}")
    await migrate(engine)
    for tenant in ("acme", "globex"):
        await registry.create_tenant(engine, tenant_id=tenant, name=tenant.title())
    yield engine
    await engine.dispose()


async def test_an_edit_on_sqlite_rewrites_the_terms_and_refuses_erased_and_foreign(
    sqlite: AsyncEngine,
) -> None:
    keyring = Keyring(KEY)
    made = await service.create_customer(
        sqlite, keyring=keyring, tenant_id="acme", actor=cli_actor(),
        body=CustomerIn(name="Zoë Dupont", email="zoe@example.fr", phone="+33 6 12 34 56 78"),
    )  # fmt: skip

    async def found(text: str) -> list[str]:
        return [c.id for c in await service.search_customers(
            sqlite, keyring=keyring, tenant_id="acme", text=text, actor=cli_actor())]  # fmt: skip

    edit: dict[str, Any] = {"keyring": keyring, "customer_id": made.id, "actor": cli_actor()}
    edited = await service.update_profile(
        sqlite, scope=TenantScope("acme"), change=ProfileChange(name="Zoë Martin", phone=None),
        **edit,
    )  # fmt: skip
    with pytest.raises(CustomerNotFound):
        await service.update_profile(
            sqlite, scope=TenantScope("globex"), change=ProfileChange(name="X"), **edit
        )
    results = {text: await found(text) for text in ("zoe dup", "zoe mar", "06 12 34 56 78",
                                                    "zoe@example.fr")}  # fmt: skip
    await service.erase_customer(sqlite, scope=EVERY_TENANT, customer_id=made.id, actor=cli_actor())
    with pytest.raises(CustomerErased):
        await service.update_profile(
            sqlite, scope=EVERY_TENANT, change=ProfileChange(name="Zoë"), **edit
        )

    assert (edited.name, edited.email, edited.phone) == ("Zoë Martin", "zoe@example.fr", None)
    assert results == {"zoe dup": [], "zoe mar": [made.id], "06 12 34 56 78": [],
                       "zoe@example.fr": [made.id]}  # fmt: skip
    assert await _terms(sqlite, made.id) == 0
