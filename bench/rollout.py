"""What the rollout driver costs with a large fleet: a tick, and how fast it notifies.

What it measures (each figure ``--rounds`` times through ``bench/rounds.py``: median and spread),
with ``--devices`` devices (default 10,000) in ``--stores`` stores in one rollout:

- the control plane's time for one orchestration tick of a running rollout whose devices are
  all in flight (deadlines checked, the wave's gates counted, nothing to notify): goal < 100 ms;
- the notification rate: one driver step that notifies every device of a 100 % wave and
  publishes each one's retained desired release through a real Mosquitto (QoS 1), devices per
  minute: goal >= 10,000 (AWS IoT Jobs rolls out at most 1,000 a minute per job).

The store is PostgreSQL by default (``--database sqlite`` for the embedded one).

    .venv/bin/python bench/rollout.py [--devices N] [--stores N] [--rounds N]
                                      [--database postgresql|sqlite]

Results: a table on stdout and bench/results/rollout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.rounds import Goal, Rounds, add_rounds_argument
from control_plane.db.engine import make_engine, migrate
from control_plane.devices import service as registry
from control_plane.devices.tables import devices, stores
from control_plane.ingest.worker import IngestSettings, IngestWorker
from control_plane.operators.service import cli_actor
from control_plane.releases.tables import releases
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.driver import RolloutDriver
from control_plane.rollouts.model import RolloutIn, WaveIn
from control_plane.rollouts.tables import rollout_devices
from control_plane.tenancy import EVERY_TENANT
from protocols.broker_url import parse_broker_url
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database


def _now() -> int:
    return time.time_ns() // 1_000_000


async def seed(engine: AsyncEngine, *, count: int, store_count: int) -> None:
    await registry.create_tenant(engine, tenant_id="bench", name="Bench")
    now = _now()
    async with engine.begin() as conn:
        await conn.execute(
            insert(stores),
            [
                {"id": f"bench-s{n:03d}", "tenant_id": "bench", "name": f"S{n}", "created_at": now}
                for n in range(store_count)
            ],
        )
        await conn.execute(
            insert(devices),
            [
                {
                    "id": f"bench-s{n % store_count:03d}-r{n:05d}",
                    "tenant_id": "bench",
                    "store_id": f"bench-s{n % store_count:03d}",
                    "created_at": now,
                    "online": True,
                }
                for n in range(count)
            ],
        )
        await conn.execute(
            insert(releases).values(
                version="2.0.0", sha256="a" * 64, size=1, key_id="0" * 16, signature="sig",
                min_agent_version="0.1.0", manifest="{}", published_by="bench", published_at=now,
            )
        )  # fmt: skip


async def new_rollout(engine: AsyncEngine) -> str:
    view = await rollouts.create_rollout(
        engine,
        scope=EVERY_TENANT,
        spec=RolloutIn(
            release="2.0.0", tenant_id="bench", waves=[WaveIn(percent=100)],
            rate_per_minute=1_000_000,
        ),
        actor=cli_actor(),
        client="bench",
        now_ms=_now(),
    )  # fmt: skip
    await rollouts.act(
        engine, scope=EVERY_TENANT, rollout_id=view.id, verb="start", actor=cli_actor(),
        client="bench", now_ms=_now(),
    )  # fmt: skip
    return view.id


async def main(args: argparse.Namespace, rounds: Rounds) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    if args.database == "postgresql":
        url = await create_pg_database()
    else:
        url = f"sqlite+aiosqlite:///{work}/cloud.db"
    broker = Mosquitto(work)
    broker.start()
    engine = make_engine(url)
    worker = IngestWorker(
        engine=engine,
        broker=parse_broker_url(broker.url),
        settings=IngestSettings(shared_subscription=True),
    )
    task = asyncio.create_task(worker.run())
    try:
        await migrate(engine)
        await seed(engine, count=args.devices, store_count=args.stores)
        async with asyncio.timeout(10):
            await worker.connected.wait()
        driver = RolloutDriver(engine=engine, publisher=worker, base_url="https://cp.example")
        for _ in rounds.each():
            rollout_id = await new_rollout(engine)
            began = time.perf_counter()
            await driver.step()
            seconds = time.perf_counter() - began
            rounds.add(
                "notify_rate", args.devices / seconds * 60, label=(
                    f"notified and published, {args.devices:,} devices"
                ), unit="devices/min", goal=Goal(">=", 10_000),
            )  # fmt: skip
            async with engine.begin() as conn:  # every device in flight, far from its deadline
                await conn.execute(
                    update(rollout_devices)
                    .where(rollout_devices.c.rollout_id == rollout_id)
                    .values(state="installing", deadline_at=_now() + 3_600_000)
                )
            began = time.perf_counter()
            await driver.tick(rollout_id)
            rounds.add(
                "tick", (time.perf_counter() - began) * 1000,
                label=f"one tick, {args.devices:,} devices in flight", unit="ms",
                goal=Goal("<", 100),
            )  # fmt: skip
            await rollouts.act(
                engine, scope=EVERY_TENANT, rollout_id=rollout_id, verb="abort",
                actor=cli_actor(), client="bench", now_ms=_now(),
            )  # fmt: skip
            async with engine.begin() as conn:  # no rollback to publish: nothing to roll back to
                await conn.execute(
                    update(rollout_devices)
                    .where(rollout_devices.c.rollout_id == rollout_id)
                    .values(rolled_back_at=_now())
                )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
        broker.kill()
        if args.database == "postgresql":
            await drop_pg_database(url)
    print(rounds.table())
    rounds.write(
        ROOT / "bench" / "results" / "rollout.json",
        database=args.database,
        devices=args.devices,
        stores=args.stores,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    add_rounds_argument(parser)
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Rounds("rollout", rounds=arguments.rounds)))
