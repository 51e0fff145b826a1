"""The driver's opening-hours cache (issue 11): parsed once per effective document version.

A device waiting for its window is looked at every tick; its document is read and parsed again
only when its version moved. Shown on the real store: hours held for the current version are
used as held (the document is not read again), and a new version is read at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from control_plane.configuration import service as configuration
from control_plane.configuration.layers import Layer
from control_plane.configuration.tables import config_effective
from control_plane.devices import service as registry
from control_plane.operators.service import cli_actor
from control_plane.rollouts import windows
from protocols.store_config import OpeningHours
from tests.control_plane.configuration.config_harness import TENANT_KEYS, store_identity
from tests.harness.cloud import STORE, TENANT, Cloud

DEVICE = f"{STORE}-r1"
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours(opens: str, closes: str) -> OpeningHours:
    return OpeningHours.model_validate(
        {
            "time_zone": "America/New_York",
            "week": {d: [{"opens": opens, "closes": closes}] for d in EVERY_DAY},
        }
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Cloud]:
    """The cloud store (no broker) with one device whose store has complete settings."""
    cloud = Cloud(database_url=database_url, broker_url="mqtt://127.0.0.1:1")
    await cloud.open()
    assert cloud.engine is not None
    for key, value in TENANT_KEYS.items():
        await configuration.set_setting(
            cloud.engine, actor=cli_actor(), layer=Layer.TENANT, target=TENANT, key=key, value=value
        )
    await registry.register_device(cloud.engine, device_id=DEVICE, store_id=STORE)
    await configuration.set_setting(
        cloud.engine, actor=cli_actor(), layer=Layer.STORE, target=STORE, key="store",
        value=store_identity(STORE),
    )  # fmt: skip
    yield cloud
    await cloud.close()


async def set_hours(cloud: Cloud, value: OpeningHours) -> int:
    """Store ``value`` as the store's hours; the device's new effective version."""
    assert cloud.engine is not None
    await configuration.set_setting(
        cloud.engine, actor=cli_actor(), layer=Layer.STORE, target=STORE, key="hours",
        value=value.model_dump(mode="json"),
    )  # fmt: skip
    async with cloud.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    config_effective.select()
                    .with_only_columns(config_effective.c.version)
                    .where(config_effective.c.device_id == DEVICE)
                )
            ).scalar_one()
        )


@pytest.mark.services
async def test_hours_are_parsed_once_per_document_version(store: Cloud) -> None:
    engine = store.engine
    assert engine is not None
    cache = windows.HoursCache()
    first = await set_hours(store, hours("08:00", "22:00"))
    async with engine.connect() as conn:
        read = await windows.opening_hours(conn, [DEVICE], cache)
    held = hours("06:00", "07:00")  # not what is stored: seen only if the cache is believed
    cache.entries[DEVICE] = (first, held)
    async with engine.connect() as conn:
        same_version = await windows.opening_hours(conn, [DEVICE], cache)
    second = await set_hours(store, hours("09:00", "21:00"))
    async with engine.connect() as conn:
        new_version = await windows.opening_hours(conn, [DEVICE], cache)

    assert read == {DEVICE: hours("08:00", "22:00")}
    assert same_version == {DEVICE: held}
    assert second != first
    assert new_version == {DEVICE: hours("09:00", "21:00")}
    assert cache.entries[DEVICE] == (second, hours("09:00", "21:00"))
