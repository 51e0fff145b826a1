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

    .venv/bin/python bench/config.py [--devices N] [--tenant-devices N] [--rounds N]
                                     [--database sqlite|postgresql]

Results: a table on stdout and bench/results/config.json. The issue's other figure (publish →
applied and reported by 1,000 agents, p99) needs the appliance's agents and is not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.configuration import document, preview, service
from control_plane.configuration.layers import Layer, LayerIndex, Placement, Setting
from control_plane.configuration.publisher import ConfigLink
from control_plane.db.engine import make_engine, migrate
from control_plane.db.tables import devices, stores, tenants
from control_plane.operators.audit import Actor
from mqttlink.link import MqttLink
from protocols.broker_url import parse_broker_url
from tests.control_plane.configuration.config_harness import TENANT_KEYS, store_identity
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


async def _seed(engine: AsyncEngine, count: int) -> None:
    stores_n = max(1, count // PER_STORE)
    async with engine.begin() as conn:
        await conn.execute(insert(tenants).values(id="bench", name="Bench", created_at=0))
        await conn.execute(
            insert(stores),
            [
                {"id": f"bench-s{s}", "tenant_id": "bench", "name": f"S{s}", "created_at": 0}
                for s in range(stores_n)
            ],
        )
        await conn.execute(
            insert(devices),
            [
                {
                    "id": f"bench-s{n // PER_STORE}-r{n % PER_STORE}",
                    "tenant_id": "bench",
                    "store_id": f"bench-s{n // PER_STORE}",
                    "created_at": 0,
                }
                for n in range(count)
            ],
        )
    for key, value in TENANT_KEYS.items():
        await service.set_setting(
            engine, actor=ACTOR, layer=Layer.TENANT, target="bench", key=key, value=value
        )
    for s in range(stores_n):
        await service.set_setting(
            engine,
            actor=ACTOR,
            layer=Layer.STORE,
            target=f"bench-s{s}",
            key="store",
            value=store_identity(f"bench-s{s}"),
        )


async def tenant_change(arguments: argparse.Namespace, rounds: Rounds, directory: Path) -> None:
    """A tenant-wide change on the real store, then its publication through Mosquitto."""
    if arguments.database == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / 'cloud.db'}"
    else:
        url = await create_pg_database()
    broker = Mosquitto(directory)
    broker.start()
    engine = make_engine(url)
    try:
        await migrate(engine)
        await _seed(engine, arguments.tenant_devices)
        link = ConfigLink(engine=engine, broker=parse_broker_url(broker.url))
        async with MqttLink(
            broker=link.broker, identifier="bench-config", timeout_s=30, keepalive=30
        ) as mqtt:
            await link.publish(mqtt, everything=True)
            for n in rounds.each():
                value = {"sync_interval_seconds": 30 + n}
                started = time.perf_counter()
                shown = await preview.preview_change(
                    engine,
                    actor=ACTOR,
                    layer=Layer.TENANT,
                    target="bench",
                    values={"catalog": value},
                )
                previewed = time.perf_counter()
                assert len(shown.changed) == arguments.tenant_devices
                rounds.add(
                    "preview_s",
                    previewed - started,
                    label=f"preview of it (nothing stored, {arguments.tenant_devices} diffs)",
                    unit="s",
                )
                started = time.perf_counter()
                change = await service.set_setting(
                    engine,
                    actor=ACTOR,
                    layer=Layer.TENANT,
                    target="bench",
                    key="catalog",
                    value=value,
                )
                changed = time.perf_counter()
                published = await link.publish(mqtt, everything=False)
                done = time.perf_counter()
                assert len(change.devices) == published == arguments.tenant_devices
                rounds.add(
                    "change_s",
                    changed - started,
                    label=f"tenant-wide change, {arguments.tenant_devices} registers "
                    f"({arguments.database})",
                    unit="s",
                )
                rounds.add(
                    "publish_s",
                    done - changed,
                    label=f"publish {arguments.tenant_devices} documents retained (QoS 1)",
                    unit="s",
                )
    finally:
        await engine.dispose()
        broker.kill()
        if arguments.database == "postgresql":
            await drop_pg_database(url)


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
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--tenant-devices", type=int, default=1_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    add_rounds_argument(parser)
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Rounds("config", rounds=arguments.rounds)))
