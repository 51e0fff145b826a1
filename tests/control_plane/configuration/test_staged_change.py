"""A configuration change published through waves and gates, through the API of the served
control plane (API, ingest, configuration link and the changes' driver) on a private Mosquitto
and a real PostgreSQL: one control plane for the module.

The registers are simulated appliances (the agent's own configuration code, tests/edge/agent/
configuration/simulated_fleet.py) reporting their retained ``state`` for real. A good change
passes the canary and every wave and ends on the layer it was meant for; a change paused,
resumed and aborted gives the canary its previous document back; who may start and steer a
change follows the operator roles (each refusal shown, and audited); an invalid value is refused
with its JSON path before anything is stored. The bad printer caught at the canary, with two
real appliances, is test_staged_change_browser.py (the console shows it); a control plane
SIGKILLed mid-wave, test_staged_change_sigkill.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from control_plane.configuration import service
from control_plane.configuration.effective import device_configuration
from control_plane.configuration.layers import Layer
from control_plane.operators.principal import Role
from control_plane.operators.tables import audit_log
from tests.control_plane.configuration.config_harness import seed_tenant
from tests.edge.agent.configuration.simulated_fleet import simulated_fleet
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database, wait_until

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]
GUARD_S = 120  # only against hangs
TENANT, OTHER = "waves", "elsewhere"
STORES = [f"{TENANT}-0{s}" for s in (1, 2)]
REGISTERS = [f"{store}-r{r}" for store in STORES for r in (1, 2)]
_emails = itertools.count(1)


@dataclass
class Served:
    cp: ServedControlPlane
    sim: Path

    @property
    def engine(self) -> Any:
        return self.cp.app.state.engine

    async def as_role(self, role: Role, tenant: str = TENANT) -> httpx.AsyncClient:
        """A client logged in as a new operator of ``role`` in ``tenant``."""
        tenant_id = None if role is Role.PLATFORM_ADMIN else tenant
        session = await self.cp.log_in(f"op{next(_emails)}@waves.example", role, tenant_id)
        return httpx.AsyncClient(
            base_url=self.cp.url,
            headers={"Cookie": f"sf_session={session.secret}", "X-CSRF-Token": session.csrf},
            timeout=30,
        )

    def applied(self, device_id: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            (self.sim / device_id / "config" / "applied.json").read_text()
        )
        return found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("waves")
    url = await create_pg_database()
    broker = Mosquitto(directory)
    broker.start()
    try:
        async with served_control_plane(
            database_url=url, broker_url=broker.url, rollout_tick_s=0.2
        ) as cp:
            engine = cp.app.state.engine
            await seed_tenant(engine, TENANT, stores=2, registers=2)
            await seed_tenant(engine, OTHER, stores=1, registers=1)
            cp.app.state.config_link.poke()
            async with simulated_fleet(REGISTERS, broker_url=broker.url, data_root=directory):
                served = Served(cp=cp, sim=directory)
                for device in REGISTERS:
                    await wait_until(
                        lambda d=device: _in_step(served, d),  # type: ignore[misc]
                        timeout=GUARD_S,
                        what=f"{device} running its document",
                    )
                yield served
    finally:
        broker.kill()
        await drop_pg_database(url)


async def _in_step(served: Served, device_id: str) -> bool:
    """The appliance applied the version the control plane wants."""
    desired = (await device_configuration(served.engine, device_id=device_id)).version
    path = served.sim / device_id / "config" / "applied.json"
    return path.exists() and served.applied(device_id)["version"] == desired


async def _until(client: httpx.AsyncClient, change_id: str, *statuses: str) -> dict[str, Any]:
    """The change once its status is one of ``statuses``."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        answer = await client.get(f"/api/config/changes/{change_id}")
        seen.update(answer.json())
        return seen["status"] in statuses

    await wait_until(reached, timeout=GUARD_S, what=f"change {change_id} {' or '.join(statuses)}")
    return seen


async def _layer_keys(served: Served, layer: Layer, target: str) -> set[str]:
    views = await service.layer_settings(served.engine, layer=layer, target=target)
    return {s.key for s in views}


async def _audited(served: Served, target: str) -> list[Any]:
    async with served.engine.connect() as conn:
        return list(
            await conn.execute(
                select(audit_log).where(audit_log.c.target == target).order_by(audit_log.c.id)
            )
        )


async def test_a_good_change_passes_every_wave_and_lands_on_its_layer(served: Served) -> None:
    admin = await served.as_role(Role.TENANT_ADMIN)
    answer = await admin.post(
        f"/api/config/tenants/{TENANT}/settings/log_level/waves",
        json={
            "value": "DEBUG",
            "waves": [{"devices": 1}, {"percent": 50}, {"percent": 100}],
            "health_s": 1,
        },
    )
    assert answer.status_code == 201, answer.text
    started = answer.json()
    assert [d["wave"] for d in started["devices"]] == [0, 1, 2, 2]
    assert [d["device_id"] for d in started["devices"]] == REGISTERS
    assert [w["size"] for w in started["waves"]] == [1, 1, 2]
    done = await _until(admin, started["id"], "completed", "halted")
    for device in REGISTERS:
        await wait_until(
            lambda d=device: _in_step(served, d),  # type: ignore[misc]
            timeout=GUARD_S,
            what=f"{device} running the change",
        )
    levels = {d: served.applied(d)["doc"]["log_level"] for d in REGISTERS}
    register_keys = [await _layer_keys(served, Layer.REGISTER, d) for d in REGISTERS]
    views = [await device_configuration(served.engine, device_id=d) for d in REGISTERS]
    listed = (await admin.get("/api/config/changes", params={"layer": "tenant"})).json()
    start_entries = await _audited(served, f"tenant/{TENANT}/log_level")

    assert done["status"] == "completed", done["reason"]
    assert done["reason"] == "every wave passed"
    assert {d["state"] for d in done["devices"]} == {"succeeded"}
    assert all(d["detail"].startswith("healthy 1 s at version") for d in done["devices"])
    assert set(levels.values()) == {"DEBUG"}
    assert "log_level" in await _layer_keys(served, Layer.TENANT, TENANT)
    assert all("log_level" not in keys for keys in register_keys)
    provenance = {k.provenance.layer for v in views for k in v.keys if k.key == "log_level"}
    assert provenance == {Layer.TENANT}
    assert [c["id"] for c in listed] == [started["id"]]
    assert listed[0]["counts"] == {"succeeded": 4}
    started_entry = json.loads(start_entries[0].after)
    assert started_entry["through_waves"] == started["id"]
    assert start_entries[0].actor.endswith("@waves.example")
    ended = await _audited(served, f"config-change/{started['id']}")
    assert [(e.via, json.loads(e.after)["status"]) for e in ended] == [
        ("config-change", "completed")
    ]
    driver_entries = await _audited(served, f"register/{REGISTERS[0]}/log_level")
    assert {e.via for e in driver_entries} == {"config-change"}  # set, then removed at the end
    assert len(driver_entries) == 2


async def test_pause_resume_and_abort_give_the_canary_its_document_back(served: Served) -> None:
    operator = await served.as_role(Role.OPERATOR)
    store, canary, second = STORES[1], f"{STORES[1]}-r1", f"{STORES[1]}-r2"
    before = {d: served.applied(d) for d in (canary, second)}
    answer = await operator.post(
        f"/api/config/stores/{store}/settings/log_level/waves",
        json={"value": "WARNING", "waves": [{"devices": 1}, {"percent": 100}], "health_s": 3600},
    )
    assert answer.status_code == 201, answer.text
    change_id = answer.json()["id"]

    async def canary_applied() -> bool:
        found = (await operator.get(f"/api/config/changes/{change_id}")).json()
        return found["devices"][0]["state"] == "applied"

    await wait_until(canary_applied, timeout=GUARD_S, what="the canary applied the change")
    assert served.applied(canary)["doc"]["log_level"] == "WARNING"
    paused = await operator.post(f"/api/config/changes/{change_id}/pause")
    again = await operator.post(f"/api/config/changes/{change_id}/pause")
    resumed = await operator.post(f"/api/config/changes/{change_id}/resume")
    aborted = await operator.post(f"/api/config/changes/{change_id}/abort")
    late = await operator.post(f"/api/config/changes/{change_id}/resume")

    async def rolled_back() -> bool:
        found = (await operator.get(f"/api/config/changes/{change_id}")).json()
        return found["devices"][0]["rolled_back_to"] is not None

    await wait_until(rolled_back, timeout=GUARD_S, what="the canary rolled back")
    await wait_until(lambda: _in_step(served, canary), timeout=GUARD_S, what="canary in step")
    found = (await operator.get(f"/api/config/changes/{change_id}")).json()
    entries = await _audited(served, f"config-change/{change_id}")

    assert paused.json()["status"] == "paused"
    assert again.status_code == 409
    assert again.json()["reason"] == "config_change_state_refused"
    assert resumed.json()["status"] == "running"
    assert aborted.json()["status"] == "aborted"
    assert late.status_code == 409
    canary_row, second_row = found["devices"]
    assert canary_row["rolled_back_to"] == canary_row["version"] + 1
    assert served.applied(canary)["version"] == canary_row["rolled_back_to"]
    assert served.applied(canary)["doc"] == before[canary]["doc"]
    assert second_row["state"] == "pending"  # never notified
    assert served.applied(second) == before[second]
    assert "log_level" not in await _layer_keys(served, Layer.REGISTER, canary)
    assert "log_level" not in await _layer_keys(served, Layer.STORE, store)
    assert [(e.outcome, json.loads(e.after)["verb"]) for e in entries if e.outcome == "ok"] == [
        ("ok", "pause"),
        ("ok", "resume"),
        ("ok", "abort"),
    ]


async def test_who_may_start_and_steer_a_change_follows_the_roles(served: Served) -> None:
    admin = await served.as_role(Role.TENANT_ADMIN)
    operator = await served.as_role(Role.OPERATOR)
    viewer = await served.as_role(Role.VIEWER)
    foreign = await served.as_role(Role.TENANT_ADMIN, OTHER)
    body = {"value": "ERROR", "waves": [{"devices": 1}], "health_s": 3600}
    tenant_url = f"/api/config/tenants/{TENANT}/settings/log_level/waves"

    by_viewer = await viewer.post(
        f"/api/config/stores/{STORES[0]}/settings/log_level/waves", json=body
    )
    by_operator = await operator.post(tenant_url, json=body)
    by_foreigner = await foreign.post(tenant_url, json=body)
    started = await admin.post(tenant_url, json=body)
    assert started.status_code == 201, started.text
    change_id = started.json()["id"]
    operator_abort = await operator.post(f"/api/config/changes/{change_id}/abort")
    viewer_pause = await viewer.post(f"/api/config/changes/{change_id}/pause")
    foreign_read = await foreign.get(f"/api/config/changes/{change_id}")
    foreign_abort = await foreign.post(f"/api/config/changes/{change_id}/abort")
    foreign_list = (await foreign.get("/api/config/changes")).json()
    viewer_read = await viewer.get(f"/api/config/changes/{change_id}")
    aborted = await admin.post(f"/api/config/changes/{change_id}/abort")
    refusals = [
        e for e in await _audited(served, f"POST /api/config/changes/{change_id}/abort")
        if e.outcome == "refused"
    ]  # fmt: skip

    assert by_viewer.status_code == 403
    assert by_operator.status_code == 403  # the tenant layer is the tenant admins'
    assert by_foreigner.status_code == 404  # another tenant's layer is not found
    assert operator_abort.status_code == 403
    assert "tenant_config:write" in operator_abort.json()["detail"]
    assert viewer_pause.status_code == 403
    assert foreign_read.status_code == 404
    assert foreign_abort.status_code == 404
    assert change_id not in {c["id"] for c in foreign_list}
    assert viewer_read.status_code == 200
    assert aborted.json()["status"] == "aborted"
    assert {(e.reason, e.actor.split("@")[0][:2]) for e in refusals} >= {("forbidden", "op")}
    assert len(refusals) == 2  # the operator's and the other tenant's (not found)


async def test_an_invalid_value_is_refused_with_its_path_and_nothing_is_stored(
    served: Served,
) -> None:
    admin = await served.as_role(Role.TENANT_ADMIN)
    before = (await admin.get("/api/config/changes")).json()
    refused = await admin.post(
        f"/api/config/stores/{STORES[0]}/settings/printer/waves",
        json={"value": {"connector": "network", "paper_width_mm": 80}},
    )
    bad_waves = await admin.post(
        f"/api/config/stores/{STORES[0]}/settings/log_level/waves",
        json={"value": "DEBUG", "waves": [{"devices": 1, "percent": 5}]},
    )
    after = (await admin.get("/api/config/changes")).json()

    assert refused.status_code == 422
    assert refused.json()["reason"] == "invalid_configuration"
    assert "printer" in refused.json()["detail"]
    assert bad_waves.status_code == 422
    assert [c["id"] for c in after] == [c["id"] for c in before]  # no change was stored
