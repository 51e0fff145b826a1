"""A release end to end: built, published, rolled out by the control plane, run by the agent.

Real parts only: the control plane served by uvicorn (API, ingest, rollout driver) on SQLite,
a private Mosquitto, and an appliance whose identity the fleet CA issued (as the demo's
registers get theirs) running ``python -m edge.agent``, which starts the real register. The
bundle is made by ``storefleet release build``'s own code from this commit's wheel at a bumped
version and published through ``POST /api/releases``. A cashier has a sale open at the kiosk
(its HTTP API, as the touchscreen calls it) when a one-wave rollout reaches the device: the agent
downloads the bundle from the control plane's device-authenticated route and installs it into a
slot, then waits — the register's update lease (owner, reason, expiry) shows in the device's
state on the control plane's API, the device stays ``installing`` and the register is not
restarted. The sale is paid; the agent switches, watches the new register through the health
window and commits; the rollout shows the device ``succeeded`` only once the State it reports
names the new release, and the new register sells.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from control_plane.devices import service as registry
from control_plane.devices.tables import device_state
from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR
from protocols.release_bundle import public_key_text
from provisioning.ca import CertificateAuthority
from storefleet.release_cli import build_bundle
from tests.control_plane.devices.device_harness import issued_identity
from tests.edge.agent.agent_process import AgentProcess
from tests.edge.agent.configuration.test_config_apply import Kiosk
from tests.edge.agent.releases.bundles import NEW_VERSION, build_bumped_wheel
from tests.harness.control_plane import ServedControlPlane, served_control_plane
from tests.harness.services import Mosquitto, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 300  # only against hangs (a register starts in 30 s on a machine under load)
DEVICE, STORE, TENANT = "acme-01-r1", "acme-01", "acme"
MILK = "7610200000019"  # 1.75 in the demo catalogue
CASHIER = {"employee_id": "E01", "pin": "1234"}  # the demo store's


async def _device_in_rollout(cp: ServedControlPlane, rollout_id: str) -> dict[str, Any]:
    async with cp.client() as admin:
        answer = await admin.get(f"/api/rollouts/{rollout_id}")
    assert answer.status_code == 200, answer.text
    (device,) = answer.json()["devices"]
    found: dict[str, Any] = device
    return found


async def _reported_release(cp: ServedControlPlane) -> str | None:
    """The app release the device's last State named, as the control plane stored it."""
    async with cp.app.state.engine.connect() as conn:
        found = await conn.execute(
            select(device_state.c.app_release).where(device_state.c.device_id == DEVICE)
        )
        release: str | None = found.scalar_one_or_none()
        return release


async def _ready(app: AgentProcess) -> bool:
    health = await app.healthz()
    return health is not None and bool(health["ready"])


async def _lease_shown(admin: httpx.AsyncClient) -> dict[str, Any] | None:
    """The update lease in the device's state as the control plane's API shows it, or None."""
    answer = await admin.get(f"/api/devices/{DEVICE}/state")
    if answer.status_code != 200:
        return None
    detail: dict[str, Any] = answer.json()["peripherals"].get("release", {}).get("detail", {})
    return detail if detail.get("lease_owner") else None


async def test_a_rollout_waits_for_the_open_sale_then_takes_the_appliance_to_the_new_release(
    tmp_path: Path, mosquitto: Mosquitto, fleet_ca: CertificateAuthority
) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = build_bundle(
        wheels=[build_bumped_wheel(tmp_path / "wheel")], key=key, out_dir=tmp_path / "bundle"
    )
    app = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=DEVICE,
        broker_url=mosquitto.url,
        agent={
            "trusted_release_keys": [public_key_text(key.public_key())],
            "release_health_window_s": 2.0,
            "start_timeout_s": 90.0,
            "heartbeat_timeout_s": 30.0,  # a loaded test machine must not look like a hang
            "backoff_initial_s": 0.2,
        },
    )
    async with served_control_plane(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
        broker_url=mosquitto.url,
        release_keys=public_key_text(key.public_key()),
        release_dir=tmp_path / "releases",
        rollout_tick_s=0.1,
        rollout_lease_s=2.0,
    ) as cp:
        engine = cp.app.state.engine
        await registry.create_tenant(engine, tenant_id=TENANT, name="Acme")
        await registry.create_store(engine, store_id=STORE, tenant_id=TENANT, name="High St")
        await registry.register_device(engine, device_id=DEVICE, store_id=STORE)
        await issued_identity(
            engine, fleet_ca, device_id=DEVICE, identity_dir=app.data_dir / FIXED_IDENTITY_SUBDIR
        )
        app.control_plane_url = cp.url
        app.start()
        try:
            async with asyncio.timeout(GUARD_S), cp.client() as admin:
                published = await admin.post("/api/releases", content=bundle.path.read_bytes())
                assert published.status_code == 201, published.text

                kiosk = Kiosk(app.kiosk_port)
                await wait_until(lambda: _ready(app), timeout=GUARD_S, what="the register ready")
                await kiosk.post("signin", CASHIER)
                await kiosk.post("shift/open", {"amount_minor": 10000})
                cart_id = (await kiosk.post("scan", {"code": MILK}))["state"]["register"]["cart"][
                    "id"
                ]
                (old_pid,) = app.register_pids()
                created = await admin.post(
                    "/api/rollouts",
                    json={"release": NEW_VERSION, "tenant_id": TENANT, "waves": [{"devices": 1}]},
                )
                assert created.status_code == 201, created.text
                rollout_id = created.json()["id"]
                started = await admin.post(f"/api/rollouts/{rollout_id}/start")
                assert started.status_code == 200, started.text
                states: list[str] = []

                def settled_in(*wanted: str) -> Callable[[], Awaitable[bool]]:
                    async def check() -> bool:
                        state = (await _device_in_rollout(cp, rollout_id))["state"]
                        if not states or states[-1] != state:
                            states.append(state)
                        return state in wanted

                    return check

                settled = settled_in("succeeded", "failed", "reverted", "timed_out")
                await wait_until(
                    lambda: f"release {NEW_VERSION} waits for" in app.agent_log.read_text(),
                    timeout=GUARD_S,
                    what="the install waiting for the open sale",
                )
                await wait_until(
                    lambda: _lease_shown(admin), timeout=GUARD_S, what="the lease in the API"
                )
                await wait_until(settled_in("installing"), timeout=GUARD_S, what="installed")
                lease = await _lease_shown(admin)
                held_at = (await _device_in_rollout(cp, rollout_id))["state"]
                held_pids = app.register_pids()

                paid = await kiosk.post("pay/start", {"cart_id": cart_id})
                assert paid["state"]["register"]["payment"] is not None, paid
                await kiosk.post("pay/cash", {"received_minor": 200, "cart_id": cart_id})
                await wait_until(settled, timeout=GUARD_S, what="the device's final state")
                reported_at_success = await _reported_release(cp)
                device = await _device_in_rollout(cp, rollout_id)
                await wait_until(lambda: _ready(app), timeout=GUARD_S, what="the new register")
                await kiosk.post("signin", CASHIER)  # the new register: the shift is still open
                sold = await kiosk.post("scan", {"code": MILK})
                new_cart = sold["state"]["register"]["cart"]["id"]
                await kiosk.post("pay/start", {"cart_id": new_cart})
                await kiosk.post("pay/cash", {"received_minor": 200, "cart_id": new_cart})
                health = await app.healthz()
                route = f"{cp.url}/api/devices/{DEVICE}/releases/{NEW_VERSION}/bundle"
                async with cp.anonymous() as stranger:
                    unauthenticated = (await stranger.get(route)).status_code
        finally:
            code = app.stop()
    # the install waited for the sale: installed, not switched, the register untouched
    assert held_at == "installing", states
    assert held_pids == [old_pid]
    assert lease["lease_owner"].startswith("register ")
    assert lease["lease_reason"] == f"sale {cart_id} open (1 lines)"
    assert lease["lease_expires_at"] > time.time() * 1000  # a live lease: it has an expiry
    assert device["state"] == "succeeded", states
    assert health is not None
    assert health["sales"]["committed"] == 1  # the new register sold
    assert len(app.logged_sales()) == 2  # the sale open at update time, and that one
    assert reported_at_success == NEW_VERSION  # believed only once its State showed it
    slots = json.loads((app.data_dir / "app" / "slots.json").read_text())
    assert (slots["active"], slots["committed"], slots["versions"]) == (
        "a",
        "a",
        {"a": NEW_VERSION},
    )
    log = app.agent_log.read_text()
    assert f'GET {route} "HTTP/1.1 200 OK"' in log  # the agent, as the device, got it there
    assert unauthenticated == 401  # and nobody else does
    assert f"(release {NEW_VERSION}) connected" in log  # the register's hello: the new code
    assert code == 0
