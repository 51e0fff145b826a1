"""The loyalty ledger over HTTPS: a register's balance, adjustments by role, the console section.

One served control plane (PostgreSQL, real broker) with two tenants, each with a register that
signs its calls with its own key (``tests/control_plane/customers/conftest.py``'s ``shop``).
Each refusal is shown: a register of another tenant, an unsigned call, an operator or viewer
adjusting, another tenant's admin.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from control_plane.loyalty.ledger import Movement, MovementKind, book
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from edge.pos.errors import NotAllowed
from edge.pos.loyalty_client import CloudBalances
from edge.pos.loyalty_desk import CloudUnreachable
from protocols.customer_card import new_customer_id
from tests.control_plane.customers.conftest import FOREIGN, OWN, Shop, create, now_ms
from tests.control_plane.customers.conftest import shop as shop  # noqa: PLC0414 - the fixture
from tests.harness.services import free_port

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


async def _balance(shop: Shop, customer: str, *, points: int, tenant: str = OWN) -> None:
    async with shop.engine.begin() as conn:
        await book(
            conn,
            [
                Movement(
                    source=f"test/{customer}/{points}",
                    tenant_id=tenant,
                    customer_id=customer,
                    kind=MovementKind.EARN,
                    points=points,
                    at=now_ms(),
                    store_id=f"{tenant}-01",
                )
            ],
        )


async def test_a_register_reads_its_own_tenants_balance_and_no_other(shop: Shop) -> None:
    customer = new_customer_id()
    await _balance(shop, customer, points=1200)
    # a generous timeout: this asks what the route answers, not how fast (at load 20 a first
    # signed call took over the till's 2 s)
    url, slow = shop.served.url, 60.0
    own = CloudBalances(base_url=url, auth=shop.registers[OWN], timeout=slow)
    foreign = CloudBalances(base_url=url, auth=shop.registers[FOREIGN], timeout=slow)
    unsigned = CloudBalances(base_url=url, timeout=slow)

    seen = await own.fetch(customer)
    assert seen is not None
    assert (seen.points, seen.lifetime_points, seen.fresh) == (1200, 1200, True)
    assert seen.offline_points_left == 1000  # Silver's offline limit, from the defaults
    assert await foreign.fetch(customer) is None  # another tenant's customer: not found
    with pytest.raises(CloudUnreachable):
        await unsigned.fetch(customer)  # 401: the register redeems offline instead
    async with shop.served.anonymous() as anonymous:
        refused = await anonymous.get(f"/api/loyalty/device/customers/{customer}")
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("role", "tenant", "status"),
    [
        pytest.param(Role.TENANT_ADMIN, OWN, 200, id="tenant-admin"),
        pytest.param(Role.OPERATOR, OWN, 403, id="operator-refused"),
        pytest.param(Role.VIEWER, OWN, 403, id="viewer-refused"),
        pytest.param(Role.TENANT_ADMIN, FOREIGN, 404, id="other-tenant-not-found"),
    ],
)
async def test_a_manual_adjustment_is_a_tenant_admins_and_audited(
    shop: Shop, role: Role, tenant: str, status: int
) -> None:
    customer = new_customer_id()
    await _balance(shop, customer, points=100)
    body: dict[str, Any] = {"points": -30, "store_credit_minor": 500, "reason": "goodwill"}
    async with shop.as_(role, tenant) as client:
        answer = await client.post(f"/api/loyalty/customers/{customer}/adjustments", json=body)
        again = await client.post(
            f"/api/loyalty/customers/{customer}/adjustments", json=body | {"adjustment_id": "a1"}
        )
        twice = await client.post(
            f"/api/loyalty/customers/{customer}/adjustments", json=body | {"adjustment_id": "a1"}
        )
    assert answer.status_code == status, answer.text
    if status != 200:
        assert answer.headers["content-type"].startswith("application/problem+json")
        return
    assert answer.json()["points"] == 70
    assert answer.json()["store_credit_minor"] == 500
    assert again.json()["points"] == 40
    assert twice.json()["points"] == 40  # the same adjustment id books once
    async with shop.engine.connect() as conn:
        entries = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.target).where(
                    audit_log.c.target == f"customer {customer}"
                )
            )
        ).all()
    assert [entry.action for entry in entries] == ["loyalty:adjust", "loyalty:adjust"]


async def test_an_adjustment_that_moves_nothing_is_a_problem_not_a_500(shop: Shop) -> None:
    customer = new_customer_id()
    await _balance(shop, customer, points=5)
    async with shop.as_(Role.TENANT_ADMIN) as client:
        empty = await client.post(
            f"/api/loyalty/customers/{customer}/adjustments", json={"reason": "nothing"}
        )
        unknown = await client.post(
            f"/api/loyalty/customers/{new_customer_id()}/adjustments",
            json={"points": 1, "reason": "who"},
        )
    assert empty.status_code == 422
    assert empty.json()["reason"] == "loyalty_adjustment_empty"
    assert unknown.status_code == 404
    assert unknown.json()["reason"] == "loyalty_customer_not_found"


async def test_the_customer_page_shows_balance_tier_and_movements(shop: Shop) -> None:
    made = await create(shop, name="Lea Loyal", email="lea@example.com")
    await _balance(shop, made["id"], points=5200)
    async with shop.as_(Role.OPERATOR) as client:
        page = await client.get(f"/customers/{made['id']}")
        movements = await client.get(f"/api/loyalty/customers/{made['id']}/movements")
    async with shop.as_(Role.TENANT_ADMIN, FOREIGN) as other:
        hidden = await other.get(f"/api/loyalty/customers/{made['id']}")
    assert page.status_code == 200
    assert 'id="loyalty-tier">Gold<' in page.text
    assert 'id="loyalty-points">5200<' in page.text
    assert [m["kind"] for m in movements.json()] == ["earn"]
    assert hidden.status_code == 404


async def test_a_register_searches_online_and_is_told_search_needs_the_network(
    shop: Shop,
) -> None:
    made = await create(shop, name="Sigrid Search", phone="+41 79 555 77 88")
    own = CloudBalances(base_url=shop.served.url, auth=shop.registers[OWN], timeout=60.0)
    foreign = CloudBalances(base_url=shop.served.url, auth=shop.registers[FOREIGN], timeout=60.0)
    cut = CloudBalances(base_url=f"http://127.0.0.1:{free_port()}", auth=shop.registers[OWN])

    assert (made["id"], "Sigrid S.") in await own.search("sigrid search")
    assert await foreign.search("sigrid search") == []
    with pytest.raises(NotAllowed, match="needs the network"):
        await cut.search("sigrid search")
