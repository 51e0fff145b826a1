"""The balenaCloud deployer: the real balena-sdk against a local balena API (SQLite, PostgreSQL).

The API (``balena_api``) speaks the routes and payloads the SDK calls (OData on ``/v7``, bearer
tokens, ``{"__id": n}`` navigation); its devices move only when the test calls ``advance`` (one
supervisor step). The rollout driver is stepped by hand; the tenant's rollouts go to the balena
deployer, so the native path (MQTT) is never used: its publisher fails the test if called.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.operators.service import cli_actor
from control_plane.releases.tables import releases
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.balena_cloud import (
    BalenaDeployer,
    BalenaSettings,
    balena_deployers,
    load_balena_settings,
)
from control_plane.rollouts.deployers import Deployers
from control_plane.rollouts.driver import DriverSettings, RolloutDriver
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.rollouts.native import NativeDeployer
from control_plane.settings import SettingsRefused
from control_plane.tenancy import EVERY_TENANT
from tests.control_plane.rollouts.balena_api import BalenaApi
from tests.harness.cloud import STORE, TENANT, Cloud
from tests.harness.control_plane import serving
from tests.harness.services import free_port, wait_until

pytestmark = pytest.mark.services

FLEET = "acme/registers"


def _now() -> int:
    return time.time_ns() // 1_000_000


class NoBroker:
    """The native path's publisher: a balena tenant's rollout must never publish."""

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> None:
        raise AssertionError(f"published on {topic} for a balena tenant")


class Balena:
    """The local balena API, served, with one fleet and its releases 1.0.0 and 2.0.0."""

    def __init__(self) -> None:
        self.api = BalenaApi()
        self.fleet = self.api.add_fleet(FLEET)
        self.old = self.api.add_release(self.fleet, "1.0.0")
        self.new = self.api.add_release(self.fleet, "2.0.0")
        self.url = ""

    def deployer(self, *, token: str | None = None, fleet: str = FLEET) -> BalenaDeployer:
        return BalenaDeployer(
            fleet=fleet, api_url=self.url, token=token or self.api.token, poll_s=0.0
        )


@pytest.fixture
async def balena() -> AsyncIterator[Balena]:
    served = Balena()
    port = free_port()
    served.url = f"http://127.0.0.1:{port}/"
    async with serving(served.api.app, port=port):
        yield served


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    cloud = Cloud(database_url=database_url, broker_url="mqtt://127.0.0.1:1")  # never connected
    await cloud.open()
    assert cloud.engine is not None
    async with cloud.engine.begin() as conn:
        for version in ("1.0.0", "2.0.0", "3.0.0"):  # 3.0.0 is published here, not on balena
            await conn.execute(
                insert(releases).values(
                    version=version, sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                    min_agent_version="0.1.0", manifest="{}", published_by="t",
                    published_at=_now(),
                )
            )  # fmt: skip
    try:
        yield cloud.engine
    finally:
        await cloud.close()


async def _fleet(engine: AsyncEngine, balena: Balena, count: int, **behaviour: Any) -> list[str]:
    """``count`` registers in the registry and, named after them, in the balena fleet."""
    ids = [f"{STORE}-b{n}" for n in range(count)]
    cloud = Cloud(database_url="", broker_url="")
    cloud.engine = engine
    for device_id in ids:
        await cloud.register(device_id)
        balena.api.add_device(
            balena.fleet, device_id, running=balena.old, behaviour=behaviour.get(device_id, "good")
        )
    return ids


def _driver(
    engine: AsyncEngine, deployer: BalenaDeployer, clock: Callable[[], int] = _now
) -> RolloutDriver:
    native = NativeDeployer(engine=engine, publisher=NoBroker(), base_url="http://cp")
    return RolloutDriver(
        engine=engine,
        deployers=Deployers(native=native, by_tenant={TENANT: deployer}),
        settings=DriverSettings(tick_s=0.05, lease_s=5.0),
        clock=clock,
    )


async def _started(engine: AsyncEngine, release: str, **spec: Any) -> str:
    view = await rollouts.create_rollout(
        engine,
        scope=EVERY_TENANT,
        spec=RolloutIn(release=release, tenant_id=TENANT, **spec),
        actor=cli_actor(),
        client="test",
        now_ms=_now(),
    )
    await rollouts.act(
        engine, scope=EVERY_TENANT, rollout_id=view.id, verb="start", actor=cli_actor(),
        client="test", now_ms=_now(),
    )  # fmt: skip
    return view.id


async def _drive(
    driver: RolloutDriver, balena: Balena, engine: AsyncEngine, rollout_id: str, status: str
) -> rollouts.RolloutView:
    async def reached() -> bool:
        await driver.step()
        balena.api.advance()
        view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
        return view.status == status

    await wait_until(reached, what=f"rollout {status}")
    return await rollouts.get_rollout(engine, rollout_id=rollout_id)


async def test_a_good_release_is_pinned_wave_by_wave_and_read_back(
    engine: AsyncEngine, balena: Balena
) -> None:
    ids = await _fleet(engine, balena, 4)
    driver = _driver(engine, balena.deployer())
    rollout_id = await _started(engine, "2.0.0", waves=[WaveIn(devices=1), WaveIn(percent=100)])
    await driver.step()  # the canary is pinned, nobody else
    pinned = [d["device_name"] for d in balena.api.device if d["is_pinned_on__release"]]
    assert pinned == [ids[0]]
    view = await _drive(driver, balena, engine, rollout_id, "completed")
    assert view.counts["succeeded"] == 4
    assert all(d.detail == "balena: running 2.0.0" for d in view.devices)
    for device_id in ids:
        device = balena.api.by_name(device_id)
        assert device["is_pinned_on__release"] == {"__id": balena.new}
        assert device["is_running__release"] == {"__id": balena.new}
    # the SDK's own requests: the release by raw_version, the devices by name, one pin per page
    assert any("raw_version eq '2.0.0'" in r for r in balena.api.requests)
    assert sum(r.startswith("PATCH /v7/device") for r in balena.api.requests) == 2


async def test_a_device_stuck_updating_times_out_halts_and_is_given_back_to_its_fleet(
    engine: AsyncEngine, balena: Balena
) -> None:
    ids = await _fleet(engine, balena, 3, **{f"{STORE}-b0": "stuck"})
    offset = [0]
    driver = _driver(engine, balena.deployer(), clock=lambda: _now() + offset[0])
    rollout_id = await _started(
        engine,
        "2.0.0",
        waves=[WaveIn(devices=1), WaveIn(percent=100)],
        deadlines={"downloading": 60},
    )

    async def downloading() -> bool:
        await driver.step()
        balena.api.advance()
        view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
        return view.devices[0].state == "downloading"

    await wait_until(downloading, what="the canary reads as downloading")
    offset[0] = 61_000  # past its deadline
    view = await _drive(driver, balena, engine, rollout_id, "halted")
    canary = view.devices[0]
    assert canary.state == "timed_out"
    assert "silent in downloading past its deadline" in canary.detail

    async def rolled_back() -> bool:
        await driver.step()
        view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
        return view.devices[0].rolled_back_at is not None

    await wait_until(rolled_back, what="the canary rolled back")
    view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
    assert "tracks fleet acme/registers's release again" in view.devices[0].detail
    assert balena.api.by_name(ids[0])["is_pinned_on__release"] is None
    assert [balena.api.by_name(i)["is_pinned_on__release"] for i in ids[1:]] == [None, None]


@pytest.mark.parametrize(
    ("token", "fleet", "release", "reason"),
    [
        pytest.param(
            "not-the-token", FLEET, "2.0.0", "balenaCloud refused the token (401)", id="bad-token"
        ),
        pytest.param(None, FLEET, "3.0.0", "has no release 3.0.0", id="unknown-release"),
        pytest.param(None, "acme/nowhere", "2.0.0", "no fleet 'acme/nowhere'", id="unknown-fleet"),
    ],
)
async def test_a_refused_deployer_pauses_the_rollout_with_what_to_fix(
    engine: AsyncEngine,
    balena: Balena,
    token: str | None,
    fleet: str,
    release: str,
    reason: str,
) -> None:
    await _fleet(engine, balena, 2)
    driver = _driver(engine, balena.deployer(token=token, fleet=fleet))
    rollout_id = await _started(engine, release)
    await driver.step()
    view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
    assert view.status == "paused"
    assert reason in view.reason
    assert all(d["is_pinned_on__release"] is None for d in balena.api.device)
    assert {d.state for d in view.devices} <= {"pending", "notified"}  # nothing lost
    assert all(d.state != "failed" for d in view.devices)


async def test_a_device_balena_does_not_know_fails_with_why_and_the_others_are_pinned(
    engine: AsyncEngine, balena: Balena
) -> None:
    ids = await _fleet(engine, balena, 2)
    cloud = Cloud(database_url="", broker_url="")
    cloud.engine = engine
    await cloud.register(f"{STORE}-elsewhere")  # in the registry, not in the balena fleet
    driver = _driver(engine, balena.deployer())
    rollout_id = await _started(engine, "2.0.0", waves=[WaveIn(percent=100, failure_percent=50)])
    await driver.step()
    view = await rollouts.get_rollout(engine, rollout_id=rollout_id)
    states = {d.device_id: (d.state, d.detail) for d in view.devices}
    assert states[f"{STORE}-elsewhere"] == (
        "failed",
        f"balena: no device named {STORE}-elsewhere in fleet {FLEET} "
        "(name the balena device after its storefleet id)",
    )
    assert [balena.api.by_name(i)["is_pinned_on__release"] for i in ids] == [
        {"__id": balena.new}
    ] * 2


def test_balena_fleets_without_a_token_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOREFLEET_BALENA_FLEETS", '{"t-test": "acme/registers"}')
    monkeypatch.delenv("STOREFLEET_BALENA_TOKEN", raising=False)
    with pytest.raises(SettingsRefused, match="STOREFLEET_BALENA_TOKEN is not set"):
        load_balena_settings()


def test_only_tenants_naming_a_fleet_deploy_through_balena() -> None:
    settings = BalenaSettings(fleets={"t-a": FLEET}, token="x", api_url="http://127.0.0.1:9/")
    assert sorted(balena_deployers(settings)) == ["t-a"]
    assert balena_deployers(BalenaSettings()) == {}
