"""What layered configuration costs with a large fleet (issue 12).

What it measures (each figure ``--rounds`` times through ``bench/rounds.py``: median and spread):

- resolution of the effective documents of ``--devices`` registers (default 10,000; 10 per store,
  stores in 20 tagged groups, keys on every layer), the layer engine alone: goal < 1 s;
- the same with each distinct document checked against the schema and its budget (what a
  recompute does; registers of one store without register keys share a document);
- a tenant-wide change to ``--tenant-devices`` registers (default 1,000) on the real store
  (``--database sqlite|postgresql``): its preview first (the same plan, nothing stored, one diff
  per register), then the API's whole transaction — audit entry, resolution, checks, new
  versions and their history, drift — and then publishing every changed document retained
  through a real Mosquitto (QoS 1) as the configuration link does.

- publish → applied and reported for a tenant-wide change to ``--tenant-devices`` *connected*
  appliances (goal: p99 < 2 s). 1,000 agent processes, each with its register, do not fit on
  this 2-core machine, so the appliances are simulated: ``--fleet-workers`` processes (default
  2) each host their share in one event loop, every appliance running the agent's own
  configuration code unchanged in its own MQTT session (FleetAgent, ConfigApplier with the
  schema's validation and the atomic fsynced write of applied.json, StatePublisher; see
  tests/edge/agent/configuration/simulated_fleet.py for what is left out: the register, events).
  Their data lives on ``--fleet-data`` (default /dev/shm: each real appliance fsyncs its own
  flash; 1,000 of them sharing this machine's one disk would measure the disk's queue). The
  clock starts when the configuration link starts publishing the changed documents (QoS 1,
  retained) and stops, per appliance, when its retained ``state`` with the new version reaches
  a cloud-side subscriber on the same Mosquitto: p50, p99 and the last. The appliances' CPU work
  (1,000 validations and writes) is shared by two cores here where each real appliance has its
  own, so the figure is pessimistic.

    .venv/bin/python bench/config.py [--devices N] [--tenant-devices N] [--rounds N]
                                     [--database sqlite|postgresql] [--fleet-workers N]
                                     [--fleet-data DIR] [--no-fleet]

Results: a table on stdout and bench/results/config.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil
from sqlalchemy import select

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.configuration import document, preview, service
from control_plane.configuration.layers import Layer, LayerIndex, Placement, Setting
from control_plane.configuration.publisher import ConfigLink
from control_plane.configuration.tables import config_effective
from control_plane.db.engine import make_engine, migrate
from control_plane.operators.audit import Actor
from mqttlink.link import MqttLink
from protocols.broker_url import parse_broker_url
from protocols.codec import decode
from protocols.messages import State
from protocols.topics import Channel, all_devices_filter
from tests.control_plane.configuration.config_harness import (
    TENANT_KEYS,
    seed_fleet,
    store_identity,
)
from tests.edge.agent.configuration.simulated_fleet import fleet_in_processes
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database

ACTOR = Actor(actor="bench@storefleet.example", via="cli")
PER_STORE = 10
GROUPS = 20


def _setting(layer: Layer, target: str, key: str, value: Any, priority: int = 0) -> Setting:
    return Setting(
        layer=layer,
        target=target,
        key=key,
        value=value,
        set_by="bench",
        set_at=1,
        audit_id=1,
        priority=priority,
    )


def fleet(count: int) -> tuple[list[Placement], list[Setting]]:
    """``count`` registers, keys on every layer, as a large tenant would have them."""
    stores_n = max(1, count // PER_STORE)
    settings = [_setting(Layer.TENANT, "t", key, value) for key, value in TENANT_KEYS.items()]
    settings.append(_setting(Layer.TENANT, "t", "log_level", "WARNING"))
    for g in range(GROUPS):
        settings.append(_setting(Layer.GROUP, f"g{g}", "kiosk", {"language": "de"}, priority=g))
    placements = []
    for s in range(stores_n):
        store = f"s{s}"
        settings.append(_setting(Layer.STORE, store, "store", store_identity(store)))
        for r in range(PER_STORE):
            device = f"{store}-r{r}"
            if r == 0:
                settings.append(_setting(Layer.REGISTER, device, "log_level", "DEBUG"))
            placements.append(
                Placement(
                    device_id=device,
                    tenant_id="t",
                    store_id=store,
                    groups=frozenset({f"g{s % GROUPS}", f"g{(s + 1) % GROUPS}"}),
                )
            )
    return placements[:count], settings


def resolve_all(placements: list[Placement], settings: list[Setting], *, checked: bool) -> int:
    """Resolve every register's document (and check each distinct one); how many distinct."""
    index = LayerIndex(settings)
    defaults = document.platform_defaults()
    seen: dict[str, object] = {}
    for placement in placements:
        effective = index.resolve(placement, defaults)
        if checked:
            key = repr(sorted(effective.document.items()))
            if key not in seen:
                seen[key] = document.check(effective.document)
    return len(seen)


class Reports:
    """The cloud side's view of the appliances' retained ``state``: when each reported what."""

    def __init__(self) -> None:
        self.latest: dict[str, int] = {}
        self.wanted: dict[str, int] = {}
        self.done: dict[str, float] = {}
        self.complete = asyncio.Event()

    def expect(self, wanted: dict[str, int]) -> None:
        """Wait for every device of ``wanted`` to report at least its version."""
        self.wanted, self.done = wanted, {}
        self.complete.clear()
        for device, version in self.latest.items():
            self.seen(device, version)

    def seen(self, device: str, version: int) -> None:
        self.latest[device] = version
        if device in self.wanted and device not in self.done and version >= self.wanted[device]:
            self.done[device] = time.perf_counter()
            if len(self.done) == len(self.wanted):
                self.complete.set()

    async def receive(self, link: MqttLink) -> None:
        async for message in link.messages:
            payload = message.payload
            if isinstance(payload, bytes):
                state = decode(str(message.topic), payload)
                if isinstance(state.message, State):
                    self.seen(state.address.device_id, state.message.config_version)


async def _versions(engine: Any) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(config_effective.c.device_id, config_effective.c.version))
        return {row.device_id: row.version for row in rows}


async def tenant_change(arguments: argparse.Namespace, rounds: Rounds, directory: Path) -> None:
    """A tenant-wide change on the real store, its publication through Mosquitto and, unless
    ``--no-fleet``, the connected appliances applying and reporting it."""
    if arguments.database == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'cloud.db'}"
    else:
        url = await create_pg_database()
    broker = Mosquitto(directory)
    broker.start()
    engine = make_engine(url)
    data_root = Path(tempfile.mkdtemp(prefix="bench-fleet-", dir=arguments.fleet_data))
    try:
        await migrate(engine)
        ids = await seed_fleet(engine, "bench", registers=arguments.tenant_devices)
        link = ConfigLink(engine=engine, broker=parse_broker_url(broker.url))
        reports = Reports()
        async with (
            MqttLink(
                broker=link.broker, identifier="bench-config", timeout_s=30, keepalive=30
            ) as mqtt,
            MqttLink(
                broker=link.broker, identifier="bench-reports", timeout_s=30, keepalive=30
            ) as watcher,
            asyncio.TaskGroup() as tasks,
        ):
            await watcher.subscribe(all_devices_filter(Channel.STATE), qos=1)
            watching = tasks.create_task(reports.receive(watcher), name="bench-reports")
            await link.publish(mqtt, everything=True)
            appliances: contextlib.AbstractAsyncContextManager[list[int]] = (
                contextlib.nullcontext(enter_result=[])
                if arguments.no_fleet
                else fleet_in_processes(
                    ids,
                    broker_url=broker.url,
                    workers=arguments.fleet_workers,
                    data_root=data_root,
                )
            )
            async with appliances as pids:
                if not arguments.no_fleet:
                    reports.expect(await _versions(engine))
                    async with asyncio.timeout(900):
                        await reports.complete.wait()
                for n in rounds.each():
                    await _one_change(arguments, rounds, engine, link, mqtt, reports, n, pids)
            watching.cancel()
    finally:
        await engine.dispose()
        broker.kill()
        shutil.rmtree(data_root, ignore_errors=True)
        if arguments.database == "postgresql":
            await drop_pg_database(url)


async def _one_change(
    arguments: argparse.Namespace,
    rounds: Rounds,
    engine: Any,
    link: ConfigLink,
    mqtt: MqttLink,
    reports: Reports,
    n: int,
    pids: list[int],
) -> None:
    devices_n = arguments.tenant_devices
    value = {"sync_interval_seconds": 30 + n}
    started = time.perf_counter()
    shown = await preview.preview_change(
        engine, actor=ACTOR, layer=Layer.TENANT, target="bench", values={"catalog": value}
    )
    previewed = time.perf_counter()
    assert len(shown.changed) == devices_n
    rounds.add(
        "preview_s",
        previewed - started,
        label=f"preview of it (nothing stored, {devices_n} diffs)",
        unit="s",
    )
    started = time.perf_counter()
    change = await service.set_setting(
        engine, actor=ACTOR, layer=Layer.TENANT, target="bench", key="catalog", value=value
    )
    changed = time.perf_counter()
    if not arguments.no_fleet:
        reports.expect(await _versions(engine))
    publishing = time.perf_counter()
    cpu_before = _cpu_s(pids)
    published = await link.publish(mqtt, everything=False)
    done = time.perf_counter()
    assert len(change.devices) == published == devices_n
    rounds.add(
        "change_s",
        changed - started,
        label=f"tenant-wide change, {devices_n} registers ({arguments.database})",
        unit="s",
    )
    rounds.add(
        "publish_s",
        done - publishing,
        label=f"publish {devices_n} documents retained (QoS 1)",
        unit="s",
    )
    if arguments.no_fleet:
        return
    async with asyncio.timeout(900):
        await reports.complete.wait()
    cpu_used = _cpu_s(pids) - cpu_before
    took = sorted(at - publishing for at in reports.done.values())
    where = f"{devices_n} connected appliances, {arguments.fleet_workers} processes"
    rounds.add(
        "applied_reported_p99_s",
        statistics.quantiles(took, n=100, method="inclusive")[98],
        label=f"publish -> applied and reported, p99 ({where})",
        unit="s",
        goal=Goal("<", 2.0),
    )
    rounds.add(
        "applied_reported_p50_s",
        statistics.median(took),
        label="... p50",
        unit="s",
    )
    rounds.add("applied_reported_last_s", took[-1], label="... the last appliance", unit="s")
    rounds.add(
        "appliances_cpu_ms",
        cpu_used * 1000 / devices_n,
        label="CPU one appliance spent on it (receive, validate, write, report)",
        unit="ms",
    )


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the fleet's worker processes have used so far."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def main(arguments: argparse.Namespace, rounds: Rounds) -> None:
    placements, settings = fleet(arguments.devices)
    for _ in rounds.each():
        started = time.perf_counter()
        resolve_all(placements, settings, checked=False)
        resolved = time.perf_counter()
        distinct = resolve_all(placements, settings, checked=True)
        checked = time.perf_counter()
        rounds.add(
            "resolve_s",
            resolved - started,
            label=f"resolve {arguments.devices} registers' documents",
            unit="s",
            goal=Goal("<", 1.0),
        )
        rounds.add(
            "resolve_checked_s",
            checked - resolved,
            label=f"... and check the {distinct} distinct documents",
            unit="s",
        )
    with tempfile.TemporaryDirectory() as directory:
        await tenant_change(arguments, rounds, Path(directory))
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "config.json",
        devices=arguments.devices,
        tenant_devices=arguments.tenant_devices,
        database=arguments.database,
        fleet_workers=0 if arguments.no_fleet else arguments.fleet_workers,
        fleet_data=arguments.fleet_data,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--tenant-devices", type=int, default=1_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--fleet-workers", type=int, default=2)
    parser.add_argument("--fleet-data", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--no-fleet", action="store_true", help="publish to nobody (no p99)")
    add_rounds_argument(parser)
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Rounds("config", rounds=arguments.rounds)))
