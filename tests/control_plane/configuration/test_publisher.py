"""The configuration link against a real Mosquitto and the real store (SQLite and PostgreSQL):
a device subscribed to its ``config`` topic receives its effective document retained, a new one
only when it changed, an offline device finds the latest when it comes back, a restart of the
link (or of a broker that lost its retained messages) republishes what the database says, and a
device's reported hashes make drift appear with its age and clear."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service
from control_plane.configuration.drift import drift_counts
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.configuration.publisher import ConfigLink, LinkSettings
from control_plane.devices import service as registry
from control_plane.tenancy import TenantScope
from protocols.broker_url import parse_broker_url
from protocols.codec import decode, encode
from protocols.messages import DesiredConfig, State
from protocols.store_config import key_hashes, parse_store_config
from protocols.topics import Channel, device_topic
from tests.control_plane.configuration.config_harness import ANA, World, fresh_world, migrated
from tests.harness.services import Mosquitto, wait_until

pytestmark = pytest.mark.services

RECEIVE_S = 15.0  # a guard against hanging, never a timing assertion


@contextlib.asynccontextmanager
async def running_link(engine: AsyncEngine, broker: Mosquitto) -> AsyncIterator[ConfigLink]:
    """The link as the app runs it, reconciled before the test goes on."""
    link = ConfigLink(
        engine=engine,
        broker=parse_broker_url(broker.url),
        settings=LinkSettings(sweep_s=3600, backoff_initial=0.05, backoff_max=0.2),
    )
    task = asyncio.create_task(link.run(), name="test-config-link")
    try:
        async with asyncio.timeout(RECEIVE_S):
            await link.reconciled.wait()
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def device(broker: Mosquitto, device_id: str) -> AsyncIterator[aiomqtt.Client]:
    """A device's session subscribed to its config topic, as the agent subscribes."""
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"dev-{device_id}") as client:
        await client.subscribe(device_topic(device_id, Channel.CONFIG), qos=1)
        yield client


async def next_config(client: aiomqtt.Client) -> DesiredConfig:
    """The next config message the device receives."""
    async with asyncio.timeout(RECEIVE_S):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            inbound = decode(str(message.topic), message.payload)
            assert isinstance(inbound.message, DesiredConfig)
            return inbound.message
    raise AssertionError("the session ended without a config message")


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with migrated(database_url) as engine:
        yield await fresh_world(engine)


async def _set(w: World, link: ConfigLink, layer: Layer, target: str, key: str, value: Any) -> None:
    await service.set_setting(w.engine, actor=ANA, layer=layer, target=target, key=key, value=value)
    link.poke()


async def test_devices_get_their_document_retained_and_new_versions_only_on_change(
    world: World, mosquitto: Mosquitto
) -> None:
    w = world
    async with running_link(w.engine, mosquitto) as link, device(mosquitto, w.r1) as r1:
        first = await next_config(r1)
        assert first.version == 1
        parse_store_config(first.doc)  # what the agent will validate
        assert first.doc["store"]["id"] == w.store1

        await _set(w, link, Layer.STORE, w.store1, "log_level", "DEBUG")
        second = await next_config(r1)
        assert (second.version, second.doc["log_level"]) == (2, "DEBUG")

        # no change to r1's document: the same value again, a tenant value its store overrides,
        # a change in another store. Then a real change: it is the very next message r1 gets.
        await _set(w, link, Layer.STORE, w.store1, "log_level", "DEBUG")
        await _set(w, link, Layer.TENANT, w.own, "log_level", "ERROR")
        await _set(w, link, Layer.STORE, w.store2, "kiosk", {"language": "fr"})
        await _set(w, link, Layer.REGISTER, w.r1, "kiosk", {"language": "de"})
        third = await next_config(r1)
        assert (third.version, third.doc["kiosk"]["language"]) == (3, "de")
        assert third.doc["log_level"] == "DEBUG"


async def test_an_offline_device_gets_the_latest_when_it_returns(
    world: World, mosquitto: Mosquitto
) -> None:
    w = world
    async with running_link(w.engine, mosquitto) as link:
        async with device(mosquitto, w.r2) as r2:
            assert (await next_config(r2)).version == 1
        # r2 is offline through two changes
        await _set(w, link, Layer.STORE, w.store1, "log_level", "WARNING")
        await _set(w, link, Layer.STORE, w.store1, "kiosk", {"language": "it"})
        await wait_until(
            lambda: _published(w, w.r2, 3), what="version 3 published for the offline register"
        )
        async with device(mosquitto, w.r2) as r2:
            latest = await next_config(r2)
        assert latest.version == 3
        assert (latest.doc["log_level"], latest.doc["kiosk"]["language"]) == ("WARNING", "it")


async def _published(w: World, device_id: str, version: int) -> bool:
    view = await device_configuration(w.engine, device_id=device_id)
    return view.published_version == version


async def test_a_restarted_link_republishes_what_the_database_says(
    world: World, mosquitto: Mosquitto
) -> None:
    w = world
    async with running_link(w.engine, mosquitto) as link:
        await _set(w, link, Layer.STORE, w.store1, "log_level", "DEBUG")
        await wait_until(lambda: _published(w, w.r1, 2), what="version 2 published")
    mosquitto.restart()  # the development broker keeps no retained messages across restarts
    async with device(mosquitto, w.r1) as r1:
        async with running_link(w.engine, mosquitto):
            again = await next_config(r1)
        async with running_link(w.engine, mosquitto):
            once_more = await next_config(r1)
    assert (again.version, again.doc["log_level"]) == (2, "DEBUG")
    assert once_more == again  # idempotent: the same version and document


async def _report(broker: Mosquitto, device_id: str, state: State) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"rep-{device_id}") as client:
        await client.publish(
            device_topic(device_id, Channel.STATE), encode(state), qos=1, retain=True
        )


async def _keys(w: World, device_id: str) -> dict[str, tuple[str, int | None]]:
    view = await device_configuration(w.engine, device_id=device_id)
    return {k.key: (k.match, k.drift_since) for k in view.keys}


async def test_reported_hashes_show_drift_and_its_age_and_clear_it(
    world: World, mosquitto: Mosquitto
) -> None:
    w = world
    async with running_link(w.engine, mosquitto) as link, device(mosquitto, w.r1) as r1:
        desired = await next_config(r1)
        applied = key_hashes(parse_store_config(desired.doc))
        wrong_printer = applied | {"printer": "0" * 64}
        await _report(
            mosquitto,
            w.r1,
            State(config_version=desired.version, config_hashes=wrong_printer),
        )

        async def printer_drifts() -> bool:
            return (await _keys(w, w.r1))["printer"][0] == "mismatch"

        await wait_until(printer_drifts, what="the printer key drifting")
        keys = await _keys(w, w.r1)
        since = keys["printer"][1]
        assert since is not None
        assert keys["log_level"] == ("match", None)
        assert {k for k, (match, _) in keys.items() if match == "mismatch"} == {"printer"}
        counted = await drift_counts(w.engine, scope=TenantScope(w.own))
        assert (counted.drifting, counted.keys, counted.oldest_since) == (1, {"printer": 1}, since)

        # the device reports again, still wrong: the drift keeps its first moment
        kept = link.reports_kept
        await _report(
            mosquitto, w.r1, State(config_version=desired.version, config_hashes=wrong_printer)
        )
        await wait_until(lambda: link.reports_kept > kept, what="the second report")
        assert (await _keys(w, w.r1))["printer"] == ("mismatch", since)

        await _report(mosquitto, w.r1, State(config_version=desired.version, config_hashes=applied))

        async def cleared() -> bool:
            return all(match == "match" for match, _ in (await _keys(w, w.r1)).values())

        await wait_until(cleared, what="drift cleared")
        assert all(since is None for _, since in (await _keys(w, w.r1)).values())
        counted = await drift_counts(w.engine, scope=TenantScope(w.own))
        assert (counted.drifting, counted.keys, counted.oldest_since) == (0, {}, None)
        assert counted.registers == 4  # the tenant's two stores of two registers


async def test_a_register_enrolled_later_gets_its_store_document_at_the_next_sweep(
    world: World, mosquitto: Mosquitto
) -> None:
    w = world
    link = ConfigLink(
        engine=w.engine,
        broker=parse_broker_url(mosquitto.url),
        settings=LinkSettings(sweep_s=0.2, backoff_initial=0.05, backoff_max=0.2),
    )
    task = asyncio.create_task(link.run(), name="test-config-link-sweeping")
    try:
        async with asyncio.timeout(RECEIVE_S):
            await link.reconciled.wait()
        newcomer = f"{w.store1}-r9"
        await registry.register_device(w.engine, device_id=newcomer, store_id=w.store1)
        async with device(mosquitto, newcomer) as r9:
            document = (await next_config(r9)).doc
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert document["store"]["id"] == w.store1
