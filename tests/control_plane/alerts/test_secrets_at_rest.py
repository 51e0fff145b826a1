"""Webhook signing secrets at rest (issue 13): the raw table never holds one in clear, on SQLite
and PostgreSQL; the notifier still signs with it; a sealed value opens with its own key and row
only; no key, no webhook channel; a short key stops the start; a clear secret from before the
sealing is sealed when the notifier starts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.notifications import channels, outbox
from control_plane.notifications.secret_box import (
    KEY_VARIABLE,
    SEALED,
    SecretBox,
    SecretUnavailable,
    seal_clear_secrets,
)
from control_plane.notifications.settings import NotificationSettings, load_notification_settings
from control_plane.notifications.tables import notification_channels
from control_plane.notifications.transports import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from control_plane.notifications.worker import Notifier
from control_plane.settings import SettingsRefused
from tests.control_plane.alerts.receivers import webhook_receiver
from tests.harness.services import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

KEY = "a sealing key of this test only, 0123456789abcdef"
SETTINGS = NotificationSettings(secrets_key=KEY, webhook_allow_private=True)  # type: ignore[arg-type]


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('secrets') / 'cloud.db'}"
    else:
        url = await create_pg_database()
    engine = make_engine(url)
    await migrate(engine)
    await registry.create_tenant(engine, tenant_id="acme", name="Acme")
    yield engine
    await engine.dispose()
    if request.param == "postgresql":
        await drop_pg_database(url)


async def _raw_rows(engine: AsyncEngine) -> str:
    """Every channel row as the database holds it, as one text."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM notification_channels"))).all()
    return repr(rows)


async def test_the_raw_table_holds_no_clear_secret_and_the_notifier_still_signs(
    engine: AsyncEngine,
) -> None:
    async with webhook_receiver() as receiver:
        row, secret = await channels.create_channel(
            engine,
            tenant_id="acme",
            spec=channels.ChannelSpec(name="ops", kind="webhook", url=receiver.url),
            created_by="test",
            settings=SETTINGS,
            now_ms=_now(),
        )
        assert secret is not None
        assert secret.startswith(channels.SECRET_PREFIX)
        assert str(row["secret"]).startswith(SEALED)
        raw = await _raw_rows(engine)
        assert secret not in raw
        assert secret.removeprefix(channels.SECRET_PREFIX) not in raw

        await outbox.enqueue_test(engine, channel=row, now_ms=_now())
        async with httpx.AsyncClient() as client:
            assert await Notifier(engine=engine, settings=SETTINGS).deliver_due(client) >= 1
    (request,) = receiver.requests
    timestamp = int(request.headers[TIMESTAMP_HEADER.lower()])
    assert verify(secret, timestamp, request.body, request.headers[SIGNATURE_HEADER.lower()])


async def test_a_sealed_secret_opens_with_its_key_and_its_row_only() -> None:
    sealed = SecretBox(KEY).seal("whsec_abc", channel_id="c1")
    assert SecretBox(KEY).open(sealed, channel_id="c1") == "whsec_abc"
    with pytest.raises(SecretUnavailable, match=KEY_VARIABLE):
        SecretBox(KEY + "!").open(sealed, channel_id="c1")
    with pytest.raises(SecretUnavailable):
        SecretBox(KEY).open(sealed, channel_id="c2")  # moved to another channel's row


async def test_without_a_key_a_webhook_channel_is_refused(engine: AsyncEngine) -> None:
    keyless = NotificationSettings(secrets_key=None, webhook_allow_private=True)
    with pytest.raises(channels.ChannelRefused) as refused:
        await channels.create_channel(
            engine,
            tenant_id="acme",
            spec=channels.ChannelSpec(name="x", kind="webhook", url="https://hooks.example/x"),
            created_by="test",
            settings=keyless,
            now_ms=_now(),
        )
    assert KEY_VARIABLE in refused.value.advice


async def test_a_short_key_stops_the_start_and_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "tooshort-xyz")
    with pytest.raises(SettingsRefused) as refused:
        load_notification_settings()
    assert KEY_VARIABLE in str(refused.value)
    assert "tooshort-xyz" not in str(refused.value)


async def test_a_clear_secret_from_before_is_sealed_when_the_notifier_starts(
    engine: AsyncEngine,
) -> None:
    clear = "whsec_" + "k" * 43
    async with engine.begin() as conn:
        await conn.execute(
            insert(notification_channels).values(
                id="legacy1", tenant_id="acme", name="old", kind="webhook",
                url="https://hooks.example/old", secret=clear, kinds="", created_at=_now(),
                created_by="test",
            )
        )  # fmt: skip
    assert await seal_clear_secrets(engine, SecretBox(KEY)) == 1
    assert clear not in await _raw_rows(engine)
    async with engine.connect() as conn:
        stored = await conn.scalar(
            select(notification_channels.c.secret).where(notification_channels.c.id == "legacy1")
        )
    assert SecretBox(KEY).open(str(stored), channel_id="legacy1") == clear
    assert await seal_clear_secrets(engine, SecretBox(KEY)) == 0
