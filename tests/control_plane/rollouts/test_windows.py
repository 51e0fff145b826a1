"""Maintenance windows from opening hours: the computation, its precedence, and the driver.

A store in America/New_York open 08:00-22:00 every day may be updated at 23:30 local, not at
12:00, and on the days the clocks change the local time is the zone's own. The computation is
checked against the daily-window arithmetic the driver already had (``model.in_window``): being
outside 08:00-22:00 is being inside 22:00-08:00. The driver holds a device of a store that is
open now, and notifies it once the store has closed; a store's explicit override wins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.configuration import service as configuration
from control_plane.configuration.layers import Layer
from control_plane.devices import service as registry
from control_plane.operators.service import cli_actor
from control_plane.releases.tables import releases
from control_plane.rollouts import model
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.driver import DriverSettings, RolloutDriver
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.rollouts.windows import Window, outside_opening_hours, window_for
from control_plane.tenancy import EVERY_TENANT
from protocols.store_config import OpeningHours
from tests.control_plane.configuration.config_harness import TENANT_KEYS, store_identity
from tests.harness.cloud import STORE, TENANT, Cloud

NEW_YORK = "America/New_York"
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OPEN_8_TO_22 = OpeningHours.model_validate(
    {"time_zone": NEW_YORK, "week": {d: [{"opens": "08:00", "closes": "22:00"}] for d in EVERY_DAY}}
)


def ms(utc: str) -> int:
    """An instant given in UTC (``2026-07-15T16:00``) as ms since the epoch."""
    return int(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp() * 1000)


def local_ms(local: str, zone: str = NEW_YORK) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


@pytest.mark.parametrize(
    ("instant", "updatable"),
    [
        pytest.param(local_ms("2026-07-15T23:30"), True, id="23:30-closed"),
        pytest.param(local_ms("2026-07-15T12:00"), False, id="12:00-open"),
        pytest.param(local_ms("2026-07-15T21:59"), False, id="21:59-still-open"),
        pytest.param(local_ms("2026-07-15T22:00"), True, id="22:00-closes"),
        pytest.param(local_ms("2026-07-15T07:59"), True, id="07:59-not-yet-open"),
        pytest.param(local_ms("2026-07-15T08:00"), False, id="08:00-opens"),
        # 2026-03-08, clocks go forward at 02:00 EST: 12:30 UTC is 08:30 EDT (open), though
        # it would be 07:30 at the winter offset; 11:30 UTC is 07:30 EDT (not yet open)
        pytest.param(ms("2026-03-08T12:30"), False, id="dst-start-08:30-edt-open"),
        pytest.param(ms("2026-03-08T11:30"), True, id="dst-start-07:30-edt-closed"),
        pytest.param(ms("2026-03-09T03:30"), True, id="dst-start-23:30-edt-closed"),
        # 2026-11-01, clocks go back at 02:00 EDT: 01:30 happens twice, closed both times;
        # 12:30 UTC is 07:30 EST (closed) though it would be 08:30 at the summer offset
        pytest.param(ms("2026-11-01T05:30"), True, id="dst-end-first-01:30"),
        pytest.param(ms("2026-11-01T06:30"), True, id="dst-end-second-01:30"),
        pytest.param(ms("2026-11-01T12:30"), True, id="dst-end-07:30-est-closed"),
        pytest.param(ms("2026-11-01T13:30"), False, id="dst-end-08:30-est-open"),
    ],
)
def test_new_york_open_8_to_22(instant: int, updatable: bool) -> None:
    assert outside_opening_hours(OPEN_8_TO_22, instant) is updatable


# from 2000 to 2100: both DST rules New York had in that time, every minute of the day
@given(st.integers(min_value=ms("2000-01-01T00:00"), max_value=ms("2100-01-01T00:00")))
def test_outside_opening_hours_is_the_daily_window_from_closing_to_opening(instant: int) -> None:
    assert outside_opening_hours(OPEN_8_TO_22, instant) == model.in_window(
        "22:00-08:00", NEW_YORK, instant
    )


def test_a_day_without_spans_is_closed_all_day() -> None:
    weekdays_only = OpeningHours.model_validate(
        {"time_zone": NEW_YORK, "week": {"mon": [{"opens": "00:00", "closes": "24:00"}]}}
    )
    assert outside_opening_hours(weekdays_only, local_ms("2026-07-14T12:00"))  # a tuesday
    assert not outside_opening_hours(weekdays_only, local_ms("2026-07-13T23:59"))  # monday


@pytest.mark.parametrize(
    ("store_window", "hours", "rollout_window", "expected"),
    [
        pytest.param(
            "01:00-03:00",
            OPEN_8_TO_22,
            "04:00-05:00",
            Window(source="override", zone=NEW_YORK, daily="01:00-03:00"),
            id="override-wins-in-the-hours'-zone",
        ),
        pytest.param(
            None,
            OPEN_8_TO_22,
            "04:00-05:00",
            Window(source="opening_hours", zone=NEW_YORK, hours=OPEN_8_TO_22),
            id="then-opening-hours",
        ),
        pytest.param(
            None,
            None,
            "04:00-05:00",
            Window(source="rollout", zone="Europe/Zurich", daily="04:00-05:00"),
            id="then-the-rollout's",
        ),
        pytest.param(
            "01:00-03:00",
            None,
            None,
            Window(source="override", zone="Europe/Zurich", daily="01:00-03:00"),
            id="override-without-hours-in-the-store's-zone",
        ),
        pytest.param(None, None, None, None, id="else-any-time"),
    ],
)
def test_window_precedence(
    store_window: str | None,
    hours: OpeningHours | None,
    rollout_window: str | None,
    expected: Window | None,
) -> None:
    found = window_for(
        store_window=store_window,
        store_zone="Europe/Zurich",
        hours=hours,
        rollout_window=rollout_window,
    )
    assert found == expected


OTHER_STORE = "s-override"


@pytest.mark.services
async def test_the_driver_holds_a_device_of_a_store_that_is_open_now(cloud: Cloud) -> None:
    engine = cloud.engine
    assert engine is not None
    await registry.create_store(engine, store_id=OTHER_STORE, tenant_id=TENANT, name="Night")
    actor = cli_actor()
    for key, value in TENANT_KEYS.items():
        await configuration.set_setting(
            engine, actor=actor, layer=Layer.TENANT, target=TENANT, key=key, value=value
        )
    for store in (STORE, OTHER_STORE):
        await registry.register_device(engine, device_id=f"{store}-r1", store_id=store)
        for key, value in (
            ("store", store_identity(store)),
            ("hours", OPEN_8_TO_22.model_dump(mode="json")),
        ):
            await configuration.set_setting(
                engine, actor=actor, layer=Layer.STORE, target=store, key=key, value=value
            )
    noon = local_ms("2026-07-15T12:00")
    await rollouts.set_maintenance_window(
        engine,
        store_id=OTHER_STORE,
        maintenance_window="11:00-13:00",  # its override (New York time): noon, open or not
        actor=actor,
        client="test",
        now_ms=noon,
    )
    async with engine.begin() as conn:
        await conn.execute(
            releases.insert().values(
                version="2.0.0", sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                min_agent_version="0.1.0", manifest="{}", published_by="t", published_at=noon,
            )
        )  # fmt: skip
    view = await rollouts.create_rollout(
        engine,
        scope=EVERY_TENANT,
        spec=RolloutIn(release="2.0.0", tenant_id=TENANT, waves=[WaveIn(percent=100)]),
        actor=actor,
        client="test",
        now_ms=noon,
    )
    await rollouts.act(
        engine, scope=EVERY_TENANT, rollout_id=view.id, verb="start",
        actor=actor, client="test", now_ms=noon,
    )  # fmt: skip
    clock = [noon]
    assert cloud.worker is not None
    driver = RolloutDriver(
        engine=engine,
        publisher=cloud.worker,
        base_url="http://cp",
        settings=DriverSettings(tick_s=0.05, lease_s=5.0),
        owner="only",
        clock=lambda: clock[0],
    )

    async def states() -> dict[str, tuple[str, str]]:
        found = await rollouts.get_rollout(engine, rollout_id=view.id)
        return {d.device_id: (d.state, d.detail) for d in found.devices}

    assert await driver.step() == [view.id]
    at_noon = await states()
    clock[0] = local_ms("2026-07-15T23:30")
    assert await driver.step() == [view.id]
    at_night = await states()

    assert at_noon == {
        f"{STORE}-r1": ("waiting_for_window",
                        f"waits until its store is closed (opening hours, {NEW_YORK})"),
        f"{OTHER_STORE}-r1": ("notified", "notified while offline: its deadline starts when it "
                              "is next seen"),
    }  # fmt: skip
    assert at_night[f"{STORE}-r1"][0] == "notified"
