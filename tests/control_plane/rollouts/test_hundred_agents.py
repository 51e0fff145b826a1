"""A hundred appliances running the fleet agent's own code through rollouts (issue 11).

Real parts: the control plane served over HTTPS under the fleet CA (API, ingest, rollout driver)
on PostgreSQL, a private Mosquitto, and 102 appliances in two worker processes, each a real
:class:`~edge.agent.process.FleetAgentProcess` with its own MQTT session, register link and
supervisor (``agent_fleet`` says what is real and what is not). Each downloads its bundle from
the control plane's device-authenticated route as itself, verifies it, installs it into its
inactive slot, switches, and the agent's health window decides; the register it starts is the
release's own small app (``appliance_app``): good, crashing on start, breaking printing, or
never ready. One control plane and one pool for the module; the scenarios run in order on the
pool (each reads what the pool runs before it starts):

* a good release goes through the default waves (1, 5 %, 25 %, 100 %) to all 100;
* one that crashes on start halts at the canary, which the agent put back on the old release,
  selling; one that breaks printing and one that never becomes ready end the same way, each
  decided by the agent (its health window), each with its reason;
* in another store, an appliance offline through a rollout gets the release when it returns,
  and one whose agent is online but never answers a release times out by its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from control_plane.devices import service as registry
from control_plane.devices.tables import device_state
from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR
from protocols.release_bundle import public_key_text
from provisioning.ca import CertificateAuthority
from storefleet.release_cli import BuiltBundle
from tests.control_plane.devices.device_harness import issued_identity
from tests.control_plane.rollouts.agent_fleet import (
    Appliance,
    SharedSlots,
    fleet_in_processes,
    seed_committed,
)
from tests.control_plane.rollouts.appliance_app import Behaviour, app_bundle
from tests.edge.agent.test_supervision import served_under
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, wait_until

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(900),  # only against hangs: the module's set-up counts in its first test
]

TENANT, POOL_STORE, EDGE_STORE = "acme", "acme-01", "acme-02"
POOL = 100
GUARD_S = 600.0  # only against hangs: 100 agents and their registers on a loaded 2-core machine
#: How often the test looks: the control plane it asks shares the test's event loop, and asking
#: it twenty times a second (a new TLS session each time) starved its ingest and driver
POLL_S = 1.0
OLD = "1.0.0"
RELEASES: dict[str, Behaviour] = {
    OLD: "good",
    "1.1.0": "good",
    "1.2.0": "crash",
    "1.3.0": "printer",
    "1.4.0": "never_ready",
}
GOOD, CRASH, PRINTER, NEVER_READY = "1.1.0", "1.2.0", "1.3.0", "1.4.0"
# the agent's start timeout: a register not ready by then is reverted. It counts from the switch
# (the old register's stop included); at load 35 a few of 75 tiny registers started at once
# took over 45 s to be ready
START_S = 90.0
AGENT_SETTINGS: dict[str, Any] = {
    "metrics_port": 0,
    "release_health_window_s": 3.0,
    "start_timeout_s": START_S,
    "heartbeat_timeout_s": 30.0,  # a loaded machine must not look like a hang
    "backoff_initial_s": 0.2,
    "state_interval_s": 600.0,  # on change, as an idle agent
}


@dataclass
class World:
    """The module's control plane, broker, pool of appliances and where their data is."""

    cp: ServedControlPlane
    admin: httpx.AsyncClient  # the platform admin's, one TLS session for the module
    broker: Mosquitto
    root: Path
    pool: list[Appliance]
    away: Appliance
    mute: Appliance
    settings: dict[str, Any]
    slot_cache: Path


@pytest.fixture(scope="module")
def short_root() -> Iterator[Path]:
    """A short directory for the appliances' data: their Unix sockets must fit 107 bytes."""
    root = Path(tempfile.mkdtemp(prefix="sf-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(short_root: Path, fleet_ca: CertificateAuthority) -> AsyncIterator[World]:
    key = Ed25519PrivateKey.generate()
    bundles = {v: app_bundle(v, b, key, short_root / "build") for v, b in RELEASES.items()}
    slot_cache = short_root / "slots"
    slot_cache.mkdir()
    shared = SharedSlots(slot_cache)
    # each release's slot made once, here, by the agent's own install code (both cores)
    await asyncio.gather(*(shared.template(_wheels(b)) for b in bundles.values()))
    old_slot = await shared.template(_wheels(bundles[OLD]))
    cert, tls_key = served_under(fleet_ca, short_root / "https")
    trust = ssl.create_default_context(cadata=fleet_ca.root_pem.decode())
    database_url = await create_pg_database()
    broker = Mosquitto(short_root)
    broker.start()
    try:
        async with (
            contextlib.AsyncExitStack() as stack,
            served_control_plane(
                database_url=database_url,
                broker_url=broker.url,
                release_keys=public_key_text(key.public_key()),
                release_dir=short_root / "releases",
                rollout_tick_s=0.2,
                rollout_lease_s=5.0,
                tls_cert=cert,
                tls_key=tls_key,
            ) as cp,
        ):
            engine = cp.app.state.engine
            await registry.create_tenant(engine, tenant_id=TENANT, name="Acme")
            for store in (POOL_STORE, EDGE_STORE):
                await registry.create_store(engine, store_id=store, tenant_id=TENANT, name=store)
            pool = [_appliance(short_root, POOL_STORE, n) for n in range(1, POOL + 1)]
            away = _appliance(short_root, EDGE_STORE, 1)
            mute = _appliance(short_root, EDGE_STORE, 2, takes_releases=False)

            async def enrol(appliance: Appliance) -> None:
                """Registered, its identity issued by the fleet CA, the old release committed."""
                await registry.register_device(
                    engine,
                    device_id=appliance.device_id,
                    store_id=appliance.device_id.rsplit("-", 1)[0],
                )
                data_dir = Path(appliance.data_dir)
                await issued_identity(
                    engine,
                    fleet_ca,
                    device_id=appliance.device_id,
                    identity_dir=data_dir / FIXED_IDENTITY_SUBDIR,
                )
                await asyncio.to_thread(seed_committed, data_dir, old_slot, OLD)

            await asyncio.gather(*(enrol(a) for a in [*pool, away, mute]))
            admin = await stack.enter_async_context(cp.client(verify=trust))
            for bundle in bundles.values():
                published = await admin.post("/api/releases", content=bundle.path.read_bytes())
                assert published.status_code == 201, published.text
            settings = AGENT_SETTINGS | {
                "broker_url": broker.url,
                "control_plane_url": cp.url,
                "trusted_release_keys": [public_key_text(key.public_key())],
            }
            world = World(
                cp=cp,
                admin=admin,
                broker=broker,
                root=short_root,
                pool=pool,
                away=away,
                mute=mute,
                settings=settings,
                slot_cache=slot_cache,
            )
            async with fleet_in_processes(
                [*pool, mute],
                settings=settings,
                slot_cache=slot_cache,
                workers=2,
                jobs_dir=short_root / "jobs",
            ):
                await settle(
                    lambda: _reporting(world, [*pool, mute], OLD),
                    what="every appliance reporting the old release",
                )
                yield world
    finally:
        broker.kill()
        await drop_pg_database(database_url)


def _wheels(bundle: BuiltBundle) -> list[Path]:
    return [bundle.path.parent.parent / f"wheel-{bundle.manifest.version}" / Path(f.path).name
            for f in bundle.manifest.files]  # fmt: skip


def _appliance(root: Path, store: str, number: int, *, takes_releases: bool = True) -> Appliance:
    device_id = f"{store}-r{number}"
    return Appliance(device_id, str(root / "a" / device_id), takes_releases=takes_releases)


async def _releases_reported(world: World, ids: list[str]) -> dict[str, str]:
    async with world.cp.app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(device_state.c.device_id, device_state.c.app_release).where(
                device_state.c.device_id.in_(ids)
            )
        )
        return {row.device_id: row.app_release for row in rows}


async def _reporting(world: World, appliances: list[Appliance], release: str) -> bool:
    ids = [a.device_id for a in appliances]
    reported = await _releases_reported(world, ids)
    return len(reported) == len(ids) and set(reported.values()) == {release}


async def settle(predicate: Callable[[], Any], *, what: str) -> None:
    """Until ``predicate`` holds, looking every ``POLL_S`` (``GUARD_S`` against hangs)."""
    await wait_until(predicate, timeout=GUARD_S, interval=POLL_S, what=what)


async def _start(world: World, release: str, **body: Any) -> str:
    spec = {"release": release, "tenant_id": TENANT} | body
    created = await world.admin.post("/api/rollouts", json=spec)
    assert created.status_code == 201, created.text
    rollout_id = str(created.json()["id"])
    started = await world.admin.post(f"/api/rollouts/{rollout_id}/start")
    assert started.status_code == 200, started.text
    return rollout_id


async def _rollout(world: World, rollout_id: str) -> dict[str, Any]:
    answer = await world.admin.get(f"/api/rollouts/{rollout_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _status_is(world: World, rollout_id: str, status: str) -> bool:
    rollout = await _rollout(world, rollout_id)
    if rollout["status"] != status and rollout["status"] in {"halted", "completed", "aborted"}:
        failed = [
            (d["device_id"], d["state"], d["detail"])
            for d in rollout["devices"]
            if d["state"] in {"failed", "reverted", "timed_out"}
        ]
        raise AssertionError(f"rollout {rollout['status']} ({rollout['reason']}): {failed}")
    return rollout["status"] == status


def _sales(appliance: Appliance) -> dict[str, Any] | None:
    """What the appliance's register last recorded selling (release, count, pid)."""
    try:
        found: dict[str, Any] = json.loads((Path(appliance.data_dir) / "sales.json").read_text())
    except FileNotFoundError:
        return None
    return found


def _slots(appliance: Appliance) -> dict[str, Any]:
    state = Path(appliance.data_dir) / "app" / "slots.json"
    found: dict[str, Any] = json.loads(state.read_text())
    return found


POOL_TARGET = {"kind": "stores", "values": [POOL_STORE]}


async def test_a_good_release_reaches_all_100_through_the_default_waves(world: World) -> None:
    rollout_id = await _start(world, GOOD, target=POOL_TARGET)
    await settle(lambda: _status_is(world, rollout_id, "completed"), what="completed")
    rollout = await _rollout(world, rollout_id)
    assert [wave["size"] for wave in rollout["waves"]] == [1, 4, 20, 75]
    assert rollout["counts"]["succeeded"] == POOL
    notified: dict[int, list[int]] = {}
    for device in rollout["devices"]:
        notified.setdefault(device["wave"], []).append(device["notified_at"])
    for wave in range(3):  # a wave is told only once the one before it passed
        assert max(notified[wave]) < min(notified[wave + 1])
    reported = await _releases_reported(world, [a.device_id for a in world.pool])
    assert set(reported.values()) == {GOOD}  # believed: every State shows it
    for appliance in world.pool:  # the agent committed it, and its register sells with it
        slots = _slots(appliance)
        assert (slots["active"], slots["committed"], slots["trying"]) == ("b", "b", None)
        assert slots["versions"]["b"] == GOOD
    await settle(
        lambda: all((_sales(a) or {}).get("release") == GOOD for a in world.pool),
        what="every register selling with the new release",
    )


@pytest.mark.parametrize(
    ("release", "why"),
    [
        pytest.param(CRASH, "ended before it was ready", id="crashes-on-start"),
        pytest.param(PRINTER, "printer worked before the switch", id="breaks-printing"),
        pytest.param(NEVER_READY, f"not ready within {START_S:g} s", id="never-ready"),
    ],
)
async def test_a_bad_release_halts_at_the_canary_which_the_agent_reverts(
    world: World, release: str, why: str
) -> None:
    before = await _releases_reported(world, [a.device_id for a in world.pool])
    rollout_id = await _start(world, release, target=POOL_TARGET)
    await settle(lambda: _status_is(world, rollout_id, "halted"), what="halted")
    rollout = await _rollout(world, rollout_id)
    (canary,) = [d for d in rollout["devices"] if d["wave"] == 0]
    appliance = next(a for a in world.pool if a.device_id == canary["device_id"])
    assert canary["state"] == "reverted"  # the agent's revert, counted as a failure
    assert why in canary["detail"]
    assert "failed" in rollout["reason"]
    assert rollout["counts"]["pending"] == POOL - 1  # nobody else heard of it
    assert sum(d["notified_at"] is not None for d in rollout["devices"]) == 1
    # the canary runs the release it ran before, committed, and sells with it again
    was = before[appliance.device_id]
    assert canary["previous_release"] == was
    slots = _slots(appliance)
    assert slots["trying"] is None
    assert slots["versions"][slots["active"]] == was
    assert slots["active"] == slots["committed"]
    selling_before = _sales(appliance) or {}
    await settle(
        lambda: _sells_again(appliance, was, selling_before),
        what="the canary selling with its old release",
    )
    assert (await _releases_reported(world, [appliance.device_id])) == {appliance.device_id: was}
    log = (Path(appliance.data_dir) / "logs" / "register.log").read_text(errors="replace")
    if release == CRASH:
        assert "this release cannot start" in log  # its register did crash


def _sells_again(appliance: Appliance, release: str, before: dict[str, Any]) -> bool:
    now = _sales(appliance) or {}
    return now.get("release") == release and (
        now.get("pid") != before.get("pid") or now.get("committed", 0) > before.get("committed", 0)
    )


async def test_an_offline_device_catches_up_and_a_silent_one_times_out(world: World) -> None:
    rollout_id = await _start(
        world,
        GOOD,
        target={"kind": "stores", "values": [EDGE_STORE]},
        waves=[{"percent": 100, "success_percent": 50, "failure_percent": 100, "min_executed": 2}],
        deadlines={"notified": 15},
    )

    async def states() -> dict[str, dict[str, Any]]:
        return {d["device_id"]: d for d in (await _rollout(world, rollout_id))["devices"]}

    async def silent_timed_out() -> bool:
        now = await states()
        return now[world.mute.device_id]["state"] == "timed_out"

    await settle(silent_timed_out, what="the silent device timed out")
    waiting = (await states())[world.away.device_id]
    assert (waiting["state"], waiting["deadline_at"]) == ("notified", None)  # no clock while away
    assert (await _rollout(world, rollout_id))["status"] == "running"
    async with fleet_in_processes(
        [world.away],
        settings=world.settings,
        slot_cache=world.slot_cache,
        workers=1,
        jobs_dir=world.root / "jobs",
    ):
        await settle(lambda: _status_is(world, rollout_id, "completed"), what="completed")
        await settle(
            lambda: (_sales(world.away) or {}).get("release") == GOOD,
            what="the returning device selling the release",
        )
    final = await states()
    assert final[world.away.device_id]["state"] == "succeeded"
    assert final[world.mute.device_id]["state"] == "timed_out"
    assert _slots(world.away)["committed"] == "b"
    assert (await _releases_reported(world, [world.mute.device_id])) == {
        world.mute.device_id: OLD  # never touched
    }
