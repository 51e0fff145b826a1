"""A tenant-wide change reaches 1,000 appliances; drift shows where one is offline and clears.

The control plane's configuration link (real, on SQLite and PostgreSQL) publishes through a
private Mosquitto to 1,000 simulated appliances in worker processes, each running the agent's own
configuration code in its own MQTT session (tests/edge/agent/configuration/simulated_fleet.py
says what is real and what is left out). Every appliance applies the first documents and reports
them: no drift. Ten go offline; a tenant-wide change reaches the 990 others, which apply and
report it, while the ten show drift on exactly the changed key, with its age; back online they
find the retained document, apply it, and the fleet's drift is empty again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.configuration import service
from control_plane.configuration.drift import drift_counts, fleet_drift
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.configuration.tables import config_effective, config_reports
from tests.control_plane.configuration.config_harness import ANA, migrated, seed_fleet
from tests.control_plane.configuration.test_publisher import running_link
from tests.edge.agent.configuration.simulated_fleet import fleet_in_processes
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]
DEVICES, OFFLINE = 1_000, 10
GUARD_S = 600.0  # only against hangs: 1,000 sessions on a loaded 2-core machine


async def reported_current(engine: AsyncEngine) -> int:
    """How many devices reported the version the control plane wants them to run."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count())
            .select_from(config_reports)
            .join(config_effective, config_effective.c.device_id == config_reports.c.device_id)
            .where(config_reports.c.version == config_effective.c.version)
        )
    return int(found or 0)


def applied_versions(data_root: Path, device_ids: list[str]) -> set[int]:
    return {
        json.loads((data_root / d / "config" / "applied.json").read_text())["version"]
        for d in device_ids
    }


def applied_level(data_root: Path, device_id: str) -> str:
    doc = json.loads((data_root / device_id / "config" / "applied.json").read_text())["doc"]
    level: str = doc["log_level"]
    return level


# PostgreSQL only, the fleet's store at this scale: the same test on SQLite took 68-253 s more of
# the suite's budget and exercised no other code (the link and the agents are the same).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_tenant_wide_change_reaches_1000_appliances_and_drift_shows_and_clears(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str
) -> None:
    tenant = f"wide{uuid.uuid4().hex[:6]}"
    data_root = tmp_path / "appliances"
    async with migrated(database_url) as engine:
        ids = await seed_fleet(engine, tenant, registers=DEVICES)
        away, staying = ids[:OFFLINE], ids[OFFLINE:]
        async with (
            asyncio.timeout(GUARD_S),
            running_link(engine, mosquitto) as link,
            fleet_in_processes(staying, broker_url=mosquitto.url, data_root=data_root, workers=2),
        ):
            async with fleet_in_processes(
                away, broker_url=mosquitto.url, data_root=data_root, workers=1
            ):
                await wait_until(
                    lambda: _count_is(engine, DEVICES),
                    timeout=GUARD_S,
                    what="every appliance reporting its first document",
                )
                assert await fleet_drift(engine) == {}
            # ten appliances are offline now; the change is made for the whole tenant
            first = (await device_configuration(engine, device_id=ids[0])).version
            assert first is not None
            changed_at = time.time_ns() // 1_000_000
            change = await service.set_setting(
                engine, actor=ANA, layer=Layer.TENANT, target=tenant, key="log_level", value="DEBUG"
            )
            link.poke()
            assert sorted(change.devices) == sorted(ids)
            await wait_until(
                lambda: _count_is(engine, DEVICES - OFFLINE),
                timeout=GUARD_S,
                what="the online appliances reporting the change",
            )
            drifting = await fleet_drift(engine)
            assert sorted(drifting) == sorted(away)
            assert {d.keys for d in drifting.values()} == {1}  # log_level only
            counts = await drift_counts(engine)  # the fleet-wide counts say as much
            assert (counts.registers, counts.drifting, counts.keys) == (
                DEVICES,
                OFFLINE,
                {"log_level": OFFLINE},
            )
            assert counts.oldest_since == min(d.since for d in drifting.values())
            assert all(d.since >= changed_at for d in drifting.values())  # its age: since then
            view = await device_configuration(engine, device_id=away[0])
            assert [k.key for k in view.keys if k.match == "mismatch"] == ["log_level"]
            assert (view.version, view.reported_version) == (first + 1, first)
            assert applied_versions(data_root, staying) == {first + 1}
            assert applied_level(data_root, staying[0]) == "DEBUG"
            assert applied_level(data_root, away[0]) == "INFO"

            async with fleet_in_processes(
                away, broker_url=mosquitto.url, data_root=data_root, workers=1
            ):
                await wait_until(
                    lambda: _count_is(engine, DEVICES),
                    timeout=GUARD_S,
                    what="the returning appliances reporting the change",
                )
                await wait_until(
                    lambda: _no_drift(engine), timeout=GUARD_S, what="the fleet's drift cleared"
                )
            cleared = await drift_counts(engine)
        assert applied_level(data_root, away[0]) == "DEBUG"
        assert (cleared.drifting, cleared.keys, cleared.oldest_since) == (0, {}, None)


async def _count_is(engine: AsyncEngine, wanted: int) -> bool:
    return await reported_current(engine) == wanted


async def _no_drift(engine: AsyncEngine) -> bool:
    return await fleet_drift(engine) == {}
