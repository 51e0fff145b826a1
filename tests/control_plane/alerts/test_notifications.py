"""Alert notifications delivered for real: a signed webhook to a local HTTP receiver (retried
after a 500, not after a 400), e-mail to a local SMTP server, only to the alert's own tenant,
and from a durable outbox that a new worker empties after a restart — on SQLite and PostgreSQL.

Alerts are opened by the evaluator itself (a register silent past its threshold), so the
notifications come from the same transaction as in production; the worker's passes are called
directly (``Notifier.deliver_due``), the way its supervised loop calls them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.alerts import evaluator
from control_plane.alerts.tables import alerts, device_history
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices
from control_plane.notifications import channels, outbox
from control_plane.notifications.channels import ChannelRefused, ChannelSpec
from control_plane.notifications.settings import NotificationSettings
from control_plane.notifications.tables import notification_channels, notification_outbox
from control_plane.notifications.transports import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from control_plane.notifications.worker import Notifier
from control_plane.tenancy import EVERY_TENANT
from tests.control_plane.alerts.receivers import smtp_server, webhook_receiver
from tests.harness.services import create_pg_database, drop_pg_database, wait_until

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

MINUTE = 60_000
HOUR = 60 * MINUTE
#: Quick retries and a short lease, so a test waits milliseconds, not minutes.
FAST = NotificationSettings(
    backoff_initial=0.05, backoff_max=0.2, lease_s=0.5, webhook_allow_private=True, max_attempts=4
)


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One migrated store per back end for the module; its URL (a test may reopen it)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('notify') / 'cloud.db'}"
    else:
        url = await create_pg_database()
    engine = make_engine(url)
    await migrate(engine)
    for tenant in ("acme", "globex"):
        await registry.create_tenant(engine, tenant_id=tenant, name=tenant)
        await registry.create_store(engine, store_id=f"{tenant}-01", tenant_id=tenant, name="S")
        await registry.register_device(engine, device_id=f"{tenant}-01-r1", store_id=f"{tenant}-01")
    await engine.dispose()
    yield url
    if request.param == "postgresql":
        await drop_pg_database(url)


@pytest_asyncio.fixture(loop_scope="module")
async def engine(store: str) -> AsyncIterator[AsyncEngine]:
    """The module's store with no alert, channel or delivery, every register heard just now."""
    engine = make_engine(store)
    async with engine.begin() as conn:
        for table in (notification_outbox, notification_channels, alerts, device_history):
            await conn.execute(delete(table))
        await conn.execute(update(devices).values(last_seen_at=_now(), backlog=0, hwm=0))
    yield engine
    await engine.dispose()


async def _webhook(engine: AsyncEngine, tenant: str, url: str, **spec: Any) -> str:
    """A webhook channel of ``tenant``; its secret."""
    _, secret = await channels.create_channel(
        engine,
        tenant_id=tenant,
        spec=ChannelSpec(name=f"{tenant} hook", kind="webhook", url=url, **spec),
        created_by="test",
        settings=FAST,
        now_ms=_now(),
    )
    assert secret is not None
    return secret


async def _silence(engine: AsyncEngine, device_id: str) -> None:
    """The register falls silent past its threshold and the evaluator opens the alert."""
    async with engine.begin() as conn:
        await conn.execute(
            update(devices)
            .where(devices.c.id == device_id)
            .values(last_seen_at=_now() - 11 * MINUTE)
        )
    await evaluator.evaluate(engine)


async def _deliveries(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(notification_outbox))).mappings().all()
    return [dict(row) for row in rows]


async def _drain(engine: AsyncEngine, notifier: Notifier) -> list[dict[str, Any]]:
    """Passes of the worker until no delivery is pending (retries wait their backoff)."""
    async with httpx.AsyncClient() as client:

        async def settled() -> bool:
            await notifier.deliver_due(client)
            return all(row["status"] != "pending" for row in await _deliveries(engine))

        await wait_until(settled, timeout=20, what="every delivery sent or failed")
    return await _deliveries(engine)


def _count(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "storefleet_notification_deliveries_total", {"channel": "webhook", "outcome": outcome}
    )
    return value or 0.0


async def test_a_500_is_retried_and_the_alert_delivered_once_signed(engine: AsyncEngine) -> None:
    before = {outcome: _count(outcome) for outcome in ("sent", "retried", "failed")}
    async with webhook_receiver(500) as receiver:
        secret = await _webhook(engine, "acme", receiver.url)
        await _silence(engine, "acme-01-r1")
        (row,) = await _drain(engine, Notifier(engine=engine, settings=FAST))
    assert (row["status"], row["attempts"], row["event"]) == ("sent", 2, "opened")
    assert len(receiver.requests) == 2  # the 500, then the 200: delivered once
    for request in receiver.requests:
        timestamp = int(request.headers[TIMESTAMP_HEADER.lower()])
        signature = request.headers[SIGNATURE_HEADER.lower()]
        assert verify(secret, timestamp, request.body, signature)
        assert not verify("whsec_other", timestamp, request.body, signature)
        assert abs(timestamp - time.time()) < 300
        assert request.headers[DELIVERY_HEADER.lower()] == row["id"]
    notice = json.loads(receiver.requests[-1].body)
    assert notice["event"] == "opened"
    assert notice["alert"]["kind"] == "silent"
    assert notice["alert"]["severity"] == "critical"
    assert notice["alert"]["device_id"] == "acme-01-r1"
    assert notice["delivery_id"] == row["id"]
    after = {outcome: _count(outcome) for outcome in ("sent", "retried", "failed")}
    assert {k: after[k] - before[k] for k in after} == {"sent": 1, "retried": 1, "failed": 0}


async def test_a_400_is_not_retried_and_marked_failed(engine: AsyncEngine) -> None:
    async with webhook_receiver(400) as receiver:
        await _webhook(engine, "acme", receiver.url)
        await _silence(engine, "acme-01-r1")
        (row,) = await _drain(engine, Notifier(engine=engine, settings=FAST))
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "400" in row["last_error"]
    assert len(receiver.requests) == 1


async def test_the_alert_and_its_clearing_are_e_mailed(engine: AsyncEngine) -> None:
    async with smtp_server() as smtp:
        settings = FAST.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_starttls": False}
        )
        await channels.create_channel(
            engine,
            tenant_id="acme",
            spec=ChannelSpec(name="on call", kind="email", recipients=("ops@acme.example",)),
            created_by="test",
            settings=settings,
            now_ms=_now(),
        )
        notifier = Notifier(engine=engine, settings=settings)
        await _silence(engine, "acme-01-r1")
        await _drain(engine, notifier)
        async with engine.begin() as conn:  # heard again: the evaluator clears the alert
            await conn.execute(update(devices).values(last_seen_at=_now()))
        await evaluator.evaluate(engine)
        rows = await _drain(engine, notifier)
    assert sorted((row["event"], row["status"]) for row in rows) == [
        ("cleared", "sent"),
        ("opened", "sent"),
    ]
    opened, cleared = smtp.messages
    assert smtp.envelopes[0][1] == ["ops@acme.example"]
    assert opened["To"] == "ops@acme.example"
    assert "silent opened on acme-01-r1 (acme-01)" in opened["Subject"]
    assert "nothing heard for 11 min" in opened.get_content()
    assert "silent cleared on acme-01-r1" in cleared["Subject"]


async def test_an_alert_goes_only_to_its_own_tenants_channels(engine: AsyncEngine) -> None:
    async with webhook_receiver() as acme, webhook_receiver() as globex:
        await _webhook(engine, "acme", acme.url)
        await _webhook(engine, "globex", globex.url)
        await _webhook(engine, "acme", acme.url + "/printers", kinds=("printer",))
        await _silence(engine, "acme-01-r1")
        rows = await _drain(engine, Notifier(engine=engine, settings=FAST))
    assert [row["tenant_id"] for row in rows] == ["acme"]  # not globex's, not the printer one
    assert [request.path for request in acme.requests] == ["/hooks/storefleet"]
    assert globex.requests == []


async def test_pending_deliveries_survive_a_restart_and_are_sent_once(
    engine: AsyncEngine, store: str
) -> None:
    async with webhook_receiver() as receiver:
        await _webhook(engine, "acme", receiver.url)
        await _silence(engine, "acme-01-r1")
        # the first instance claims the delivery and dies before sending it
        crashed = await outbox.claim(engine, owner="crashed", now_ms=_now(), lease_ms=HOUR, limit=5)
        assert len(crashed) == 1
        await engine.dispose()
        reopened = make_engine(store)  # the control plane starts again
        try:
            first, second = (Notifier(engine=reopened, settings=FAST) for _ in range(2))
            async with httpx.AsyncClient() as client:
                assert await first.deliver_due(client) == 0  # the crashed one's lease holds
                async with reopened.begin() as conn:  # … until it runs out
                    await conn.execute(update(notification_outbox).values(lease_until=_now() - 1))
                rows = await _drain(reopened, first)
                assert await second.deliver_due(client) == 0  # sent: nothing left to claim
        finally:
            await reopened.dispose()
    assert [(row["status"], row["attempts"]) for row in rows] == [("sent", 1)]
    assert len(receiver.requests) == 1


async def test_two_instances_never_send_the_same_delivery(engine: AsyncEngine) -> None:
    async with webhook_receiver() as receiver:
        await _webhook(engine, "acme", receiver.url)
        channel = (await channels.list_channels(engine, scope=EVERY_TENANT))[0]
        for _ in range(12):
            await outbox.enqueue_test(engine, channel=channel, now_ms=_now())
        workers = [Notifier(engine=engine, settings=FAST.model_copy(update={"batch": 5}))
                   for _ in range(2)]  # fmt: skip
        async with httpx.AsyncClient() as client:
            while any(row["status"] == "pending" for row in await _deliveries(engine)):
                await asyncio.gather(*(worker.deliver_due(client) for worker in workers))
    ids = [request.headers[DELIVERY_HEADER.lower()] for request in receiver.requests]
    assert len(ids) == 12
    assert len(set(ids)) == 12


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:9/x", id="loopback"),
        pytest.param("http://169.254.169.254/latest", id="cloud-metadata"),
        pytest.param("http://10.1.2.3/x", id="private"),
        pytest.param("http://localhost/x", id="localhost"),
    ],
)
async def test_a_webhook_to_an_internal_address_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ChannelRefused, match="internal address"):
        channels.check_webhook_url(url, allow_private=False)
    channels.check_webhook_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://hooks.example.com/x", id="not-http"),
        pytest.param("https://hooks.example.com:99999/x", id="port-out-of-range"),
        pytest.param("http://[::1/x", id="broken-ipv6"),
        pytest.param("https://user:pw@hooks.example.com/x", id="credentials-in-url"),
    ],
)
async def test_a_webhook_url_that_cannot_work_is_refused(url: str) -> None:
    with pytest.raises(ChannelRefused):
        channels.check_webhook_url(url, allow_private=True)


async def test_a_channel_of_a_tenant_that_does_not_exist_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ChannelRefused, match="does not exist"):
        await _webhook(engine, "nobody", "https://hooks.example.com/x")


async def test_finished_deliveries_are_forgotten_after_keep_days(engine: AsyncEngine) -> None:
    async with webhook_receiver() as receiver:
        await _webhook(engine, "acme", receiver.url)
        channel = (await channels.list_channels(engine, scope=EVERY_TENANT))[0]
        old, recent, waiting = [
            await outbox.enqueue_test(engine, channel=channel, now_ms=_now()) for _ in range(3)
        ]
        await _drain(engine, Notifier(engine=engine, settings=FAST))
    async with engine.begin() as conn:
        await conn.execute(
            update(notification_outbox)
            .where(notification_outbox.c.id == old)
            .values(done_at=_now() - 31 * 24 * HOUR)
        )
        await conn.execute(
            update(notification_outbox)
            .where(notification_outbox.c.id == waiting)
            .values(status="pending", done_at=None, next_at=_now() + HOUR)
        )
    async with httpx.AsyncClient() as client:
        await Notifier(engine=engine, settings=FAST).deliver_due(client)  # a new one prunes first
    assert sorted(row["id"] for row in await _deliveries(engine)) == sorted([recent, waiting])
