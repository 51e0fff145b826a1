"""Two stores redeem the same points offline: both sales stand, the cloud shows the overdraft.

Real parts end to end: two registers (the real checkout, ledger and replicator) in two stores of
one tenant, a real Mosquitto, the real ingest worker on a real PostgreSQL, the alert evaluator.
The customer earns at store A while the network is up; both registers then look the customer up
online (the balance the cloud projects from the journal) and the network goes: no replication,
no balance source. Each store sells and redeems 400 of the customer's 596 points, within the
Member tier's offline limit of 500. When the network is back both sales replicate, the cloud
books both (no sale is refused after the fact), the balance goes below zero and the
``loyalty_overdraft`` alert opens on the register whose redemption overdrew it.

The balance source here calls the control plane's own device-route function in this process
(the device route's HTTP and its refusals are covered by the access table); it is the same
answer an appliance gets over HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts.evaluator import evaluate
from control_plane.alerts.tables import alerts
from control_plane.devices import service as registry
from control_plane.loyalty import service as loyalty
from control_plane.loyalty.service import CustomerBalanceNotFound
from control_plane.tenancy import TenantScope
from edge.checkout.loyalty import KnownBalance
from edge.ledger import Ledger
from edge.pos import customers, payments
from edge.pos.catalog_source import load_snapshot_file
from edge.pos.loyalty_client import balance_from_json
from edge.pos.loyalty_desk import BalanceSource, CloudUnreachable
from edge.pos.register import Register
from edge.pos.register_db import RegisterDb
from edge.pos.shift_desk import open_new_shift
from edge.pos.store_config import DEMO_CATALOG, load_store_config
from edge.replication.replicator import Replicator
from protocols.broker_url import parse_broker_url
from protocols.customer_card import format_customer_card, new_customer_id
from tests.harness.appliance import FAST
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, wait_until

pytestmark = [pytest.mark.services]

CABLE = "5000395000253"  # USB-C cable 1 m, 14.90
MILK = "7610200000019"  # 1.75
STORE_B = "s-test-b"


class Network:
    """Whether the stores reach the cloud."""

    up = True


class CloudLookup:
    """A register's balance source while the network is up; raises when it is cut."""

    def __init__(
        self, engine: AsyncEngine, device_id: str, network: Network, *, tenant_id: str = TENANT
    ) -> None:
        self.engine = engine
        self.device_id = device_id
        self.network = network
        self.tenant_id = tenant_id

    async def fetch(self, customer_id: str) -> KnownBalance | None:
        if not self.network.up:
            raise CloudUnreachable(customer_id)
        try:
            view = await loyalty.device_balance(
                self.engine,
                tenant_id=self.tenant_id,
                device_id=self.device_id,
                customer_id=customer_id,
            )
        except CustomerBalanceNotFound:
            return None
        return balance_from_json(
            {
                "customer_id": view.customer_id,
                "points": view.points,
                "lifetime_points": view.lifetime_points,
                "store_credit_minor": view.credit_minor,
                "offline_redeem_limit_points": view.offline_redeem_limit_points,
                "offline_store_credit_limit_minor": view.offline_store_credit_limit_minor,
                "device_seq": view.device_seq,
            }
        )


class Till:
    """One store's register with its replicator, which the test can cut off and reconnect."""

    def __init__(self, register: Register, device_id: str, broker_url: str) -> None:
        self.register = register
        self.device_id = device_id
        self.broker_url = broker_url
        self.task: asyncio.Task[None] | None = None

    def connect(self) -> None:
        replicator = Replicator(
            ledger=self.register.ledger,
            device_id=self.device_id,
            broker=parse_broker_url(self.broker_url),
            settings=FAST,
        )
        self.task = asyncio.create_task(replicator.run(), name=f"replicator-{self.device_id}")

    async def cut(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def sell(self, customer: str, *, quantity: int, points: int = 0) -> None:
        reg = self.register
        await reg.scan(format_customer_card(customer))
        await reg.scan(CABLE)
        cart_id = reg.cart.cart_id
        if quantity > 1:
            await reg.set_quantity(1, Decimal(quantity), cart_id=cart_id)
        await payments.start_payment(reg, cart_id=cart_id)
        if points:
            await customers.pay_points(reg, points, cart_id=cart_id)
        assert reg.payment is not None
        await payments.pay_cash(reg, reg.payment.cash_due_minor, cart_id=cart_id)


@contextlib.asynccontextmanager
async def till(
    tmp: Path, device_id: str, broker_url: str, source: BalanceSource
) -> AsyncIterator[Till]:
    async with (
        Ledger(tmp / f"{device_id}.db", register_id="1") as ledger,
        RegisterDb(tmp / f"{device_id}-pos.db") as db,
    ):
        reg = Register(
            ledger=ledger,
            db=db,
            config=load_store_config(),
            catalog=load_snapshot_file(DEMO_CATALOG),
            clock=lambda: datetime.now(UTC),
        )
        await reg.start()
        reg.loyalty.source = source
        await reg.sign_in("E01", "1234")
        await open_new_shift(reg, 10000)
        one = Till(reg, device_id, broker_url)
        try:
            yield one
        finally:
            await one.cut()


@pytest.fixture
async def pg_cloud(mosquitto: Mosquitto) -> AsyncIterator[Cloud]:
    url = await create_pg_database()
    harness = Cloud(database_url=url, broker_url=mosquitto.url)
    await harness.open()
    await harness.start_ingest()
    try:
        yield harness
    finally:
        await harness.close()
        await drop_pg_database(url)


async def test_two_stores_redeeming_the_same_points_offline_both_stand_and_the_cloud_alerts(
    pg_cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    engine = pg_cloud.engine
    assert engine is not None
    await registry.create_store(engine, store_id=STORE_B, tenant_id=TENANT, name="Store B")
    await registry.register_device(engine, device_id="reg-a", store_id=STORE)
    await registry.register_device(engine, device_id="reg-b", store_id=STORE_B)
    network = Network()
    customer = new_customer_id()

    async with (
        till(tmp_path, "reg-a", mosquitto.url, CloudLookup(engine, "reg-a", network)) as a,
        till(tmp_path, "reg-b", mosquitto.url, CloudLookup(engine, "reg-b", network)) as b,
    ):
        a.connect()
        b.connect()
        await a.sell(customer, quantity=40)  # 596.00 paid: 596 points at store A
        await wait_until(lambda: a.register.ledger.backlog == 0, timeout=60, what="A replicated")
        for one in (a, b):  # both registers see the customer online: 596 points
            await one.register.loyalty.attach(customer, one.register.config.loyalty)
            attached = one.register.loyalty.attached
            assert attached is not None
            assert attached.points == 596
            one.register.next_sale()

        network.up = False  # the network goes: no balances, no replication
        await a.cut()
        await b.cut()
        await a.sell(customer, quantity=1, points=400)
        await b.sell(customer, quantity=1, points=400)

        a.connect()
        b.connect()
        await wait_until(
            lambda: a.register.ledger.backlog == 0 and b.register.ledger.backlog == 0,
            timeout=60,
            what="both stores replicated",
        )

    assert await pg_cloud.hwm("reg-a") == 3  # the shift opened and its two sales
    view = await loyalty.balance(engine, scope=TenantScope(TENANT), customer_id=customer)
    earned = 596 + 2 * 10  # each offline sale paid 14.90 - 4.00 = 10.90 in money: 10 points
    assert view.points == earned - 800
    assert view.points < 0
    assert view.overdrawn
    evaluation = await evaluate(engine)
    assert evaluation.opened >= 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(alerts.c.device_id, alerts.c.detail).where(
                    alerts.c.kind == "loyalty_overdraft", alerts.c.cleared_at.is_(None)
                )
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].device_id in {"reg-a", "reg-b"}
    assert customer in rows[0].detail
    assert f"{-view.points} points" in rows[0].detail
    sold = set(await pg_cloud.sale_ids("reg-a")) | set(await pg_cloud.sale_ids("reg-b"))
    assert len(sold) == 3  # every sale stands
