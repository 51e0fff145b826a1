"""The fleet agent supervising a real register: SIGKILL mid-stream; a register that never starts.

Real processes all the way: ``python -m edge.cli agent`` starts ``python -m edge.cli register``
itself; a private Mosquitto carries journal, state, events and commands; the cloud's ingest (or
the whole control plane, for log uploads) stores on SQLite or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import ssl
import uuid
from collections import Counter
from pathlib import Path

import psutil
import pytest

from control_plane.db.engine import make_engine
from control_plane.devices import service as registry
from edge.enrolment.device_auth import FIXED_IDENTITY_SUBDIR
from protocols.messages import Event, State
from protocols.vocabulary import EventKind
from provisioning.ca import CertificateAuthority
from provisioning.keys import build_csr, generate_private_key, private_key_pem
from tests.control_plane.devices.device_harness import issued_identity
from tests.control_plane.provisioning.fleet_harness import make_ca
from tests.harness.appliance import InProcessAppliance
from tests.harness.cloud import Cloud
from tests.harness.control_plane import served_control_plane
from tests.harness.services import Mosquitto, wait_until

from .agent_harness import control_plane
from .agent_process import AgentProcess

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 120  # only against hangs: the register starts in seconds on a quiet machine


def new_device_id() -> str:
    return f"reg-{uuid.uuid4().hex[:10]}"


async def register_device(database_url: str, device_id: str) -> None:
    """The device in the registry (through its service: the served app migrated already)."""
    engine = make_engine(database_url)
    try:
        await registry.create_tenant(engine, tenant_id="tenant-1", name="T")
        await registry.create_store(engine, store_id="store-1", tenant_id="tenant-1", name="S")
        await registry.register_device(engine, device_id=device_id, store_id="store-1")
    finally:
        await engine.dispose()


async def ready(appliance: AgentProcess) -> bool:
    """The register answers ``/healthz`` ready to sell."""
    health = await appliance.healthz()
    return health is not None and bool(health["ready"])


def ledger_sales(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT sale_id FROM sales")]


async def test_sigkill_the_register_mid_stream(
    cloud: Cloud, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The agent has the register back and selling; every committed sale reaches the cloud once."""
    device_id = new_device_id()
    await cloud.register(device_id)
    appliance = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=device_id,
        broker_url=mosquitto.url,
        register={"simulate": {"cashier_rate": 20.0, "cashier_seed": 5}},
    )
    appliance.start()
    try:
        async with asyncio.timeout(GUARD_S):

            async def selling(at_least: int) -> bool:
                health = await appliance.healthz()
                return (
                    health is not None
                    and health["ready"]
                    and (health["sales"]["committed"] >= at_least)
                )

            await wait_until(lambda: selling(10), timeout=GUARD_S, what="the register selling")
            (first,) = appliance.register_pids()
            os.kill(first, signal.SIGKILL)  # mid-stream: the cashier rings 20 sales a second

            async def replaced() -> bool:
                pids = appliance.register_pids()
                return bool(pids) and pids != [first]

            await wait_until(replaced, timeout=GUARD_S, what="a new register process")
            # a new process whose own count of sales grows: back and selling
            await wait_until(lambda: selling(5), timeout=GUARD_S, what="selling again")
            (second,) = appliance.register_pids()
    finally:
        code = appliance.stop()
    assert second != first
    assert code == 0
    assert not psutil.pid_exists(second)  # stopped before the agent exited, not left selling
    # what the ledger promised before and after the kill: all of it there, all of it replicated
    logged = appliance.logged_sales()
    ledger_path = appliance.data_dir / "ledger.db"
    kept = ledger_sales(ledger_path)
    assert set(logged) <= set(kept)
    assert len(logged) >= 15
    async with InProcessAppliance(  # the next start drains what was not yet acknowledged
        device_id=device_id, ledger_path=ledger_path, broker_url=mosquitto.url
    ) as drain:
        drain.start_replication()
        await wait_until(lambda: drain.ledger.backlog == 0, timeout=60, what="backlog drained")
        last_seq = drain.ledger.last_seq
    stored = await cloud.sale_ids(device_id)
    assert [sale for sale, n in Counter(stored).items() if n > 1] == []
    assert set(stored) == set(kept)
    audit = await cloud.audit(device_id)
    assert audit.ok, audit.problem
    assert audit.hwm == last_seq


def served_under(ca: CertificateAuthority, directory: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 from ``ca`` (chain, key): the control plane's HTTPS."""
    key = generate_private_key()
    issued = ca.issue_broker_certificate(
        build_csr(key, common_name="control plane"), hostnames=["127.0.0.1"]
    )
    directory.mkdir(parents=True, exist_ok=True)
    chain, key_file = directory / "https.crt.pem", directory / "https.key.pem"
    chain.write_bytes(issued.chain_pem)
    key_file.write_bytes(private_key_pem(key, passphrase=None))
    return chain, key_file


async def test_a_register_that_crashes_on_start(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    """Crash loop after N starts; the agent stays online, answers, uploads the register's logs
    over HTTPS to the control plane (which serves under the fleet CA the appliance pinned),
    signed with the identity the fleet CA issued into its data directory, as the demo does."""
    device_id = new_device_id()
    appliance = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=device_id,
        broker_url=mosquitto.url,
        agent={"crash_loop_after": 3, "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
    )
    appliance.data_dir.mkdir(parents=True)
    # a ledger that is not one: the register stops at its first step, every time
    (appliance.data_dir / "ledger.db").write_bytes(b"this is not an SQLite database\n" * 64)
    cert, key = served_under(fleet_ca, tmp_path / "https")
    trust = ssl.create_default_context(cadata=fleet_ca.root_pem.decode())
    async with (
        served_control_plane(
            database_url=database_url, broker_url=mosquitto.url, tls_cert=cert, tls_key=key
        ) as cloud,
        cloud.client(verify=trust) as operator,
        cloud.anonymous(verify=trust) as stranger,
    ):
        await register_device(database_url, device_id)
        await issued_identity(
            cloud.app.state.engine,
            fleet_ca,
            device_id=device_id,
            identity_dir=appliance.data_dir / FIXED_IDENTITY_SUBDIR,
        )
        appliance.control_plane_url = cloud.url
        async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device_id) as cp:
            appliance.start()
            try:
                looped = await cp.next(
                    lambda m: isinstance(m, Event) and m.kind == EventKind.APP_CRASH_LOOP
                )
                state = await cp.state(
                    lambda s: bool(
                        s.peripherals.get("register", {}).get("detail", {}).get("crash_loop")
                    )
                )
                versions = await cp.call("versions.report")
                page = await cp.call("printer.test_page")  # the register's: it cannot run
                uploaded = await cp.call("logs.upload")
                still = appliance.process is not None and appliance.process.poll() is None
            finally:
                code = appliance.stop()
        log_id = uploaded.result.get("log_id")
        stored = (await operator.get(f"/api/devices/{device_id}/logs/{log_id}")).json()
        unsigned = await stranger.post(  # the route the agent reached takes devices only
            f"/api/devices/{device_id}/logs", json={"source": "register", "text": "forged"}
        )
    assert cloud.url.startswith("https://")
    assert unsigned.status_code == 401, unsigned.text
    assert isinstance(looped, Event)
    assert looped.body["failures"] == 3
    assert looped.body["last_exit"] == "exit 1"
    assert isinstance(state, State)
    register = state.peripherals["register"]
    assert register["connected"] is False
    assert register["error"].startswith("crash loop: ")
    assert register["counters"]["starts"] >= 3
    assert still
    assert code == 0
    assert versions.ok, versions.error
    assert versions.result["agent"]
    assert versions.result["register_pid"] is None
    assert (page.ok, page.error) == (
        False,
        "the register is not running; printer.test_page needs it",
    )
    assert uploaded.ok, uploaded.error
    assert "file is not a database" in stored["text"]  # why the register died, in its own words
    assert stored["text"].count("the fleet agent starts the register") >= 3


async def test_a_hung_register_is_restarted(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """SIGSTOP: the process lives but says nothing; the missed heartbeat has it replaced."""
    device_id = new_device_id()
    appliance = AgentProcess(
        workdir=tmp_path / "appliance",
        device_id=device_id,
        broker_url=mosquitto.url,
        agent={"heartbeat_timeout_s": 2.0, "stop_timeout_s": 1.0},
    )
    async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device_id) as cp:
        appliance.start()
        try:
            await wait_until(lambda: ready(appliance), timeout=GUARD_S, what="the register ready")
            (first,) = appliance.register_pids()
            os.kill(first, signal.SIGSTOP)  # alive, silent: no heartbeat, no /healthz answer

            async def replaced_and_ready() -> bool:
                pids = appliance.register_pids()
                return bool(pids) and pids != [first] and await ready(appliance)

            await wait_until(replaced_and_ready, timeout=GUARD_S, what="a new register ready")
            restarted = await cp.next(
                lambda m: isinstance(m, Event) and m.kind == EventKind.APP_RESTARTED
            )
            metrics = await appliance.metrics()
        finally:
            code = appliance.stop()
    assert not psutil.pid_exists(first)  # killed (SIGTERM cannot reach a stopped process)
    assert isinstance(restarted, Event)
    assert restarted.body["why"] == "hung"
    assert restarted.body["pid"] != first
    assert metrics is not None
    assert 'storefleet_agent_register_exits_total{how="hung"} 1.0' in metrics
    assert 'storefleet_agent_register_starts_total{why="hung"} 1.0' in metrics
    assert "silent for 2 s; stopping it" in appliance.agent_log.read_text()
    assert code == 0


async def test_app_restart_is_answered_by_the_agent(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """``app.restart``: the running register replaced at once, not counted as a failure."""
    device_id = new_device_id()
    appliance = AgentProcess(
        workdir=tmp_path / "appliance", device_id=device_id, broker_url=mosquitto.url
    )
    async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device_id) as cp:
        appliance.start()
        try:
            await wait_until(lambda: ready(appliance), timeout=GUARD_S, what="the register ready")
            (first,) = appliance.register_pids()
            answered = await cp.call("app.restart")

            async def replaced_and_ready() -> bool:
                pids = appliance.register_pids()
                return bool(pids) and pids != [first] and await ready(appliance)

            await wait_until(replaced_and_ready, timeout=GUARD_S, what="a new register ready")
            restarted = await cp.next(
                lambda m: isinstance(m, Event) and m.kind == EventKind.APP_RESTARTED
            )
            state = await cp.state(
                lambda s: (
                    s.peripherals.get("register", {}).get("detail", {}).get("phase") == "ready"
                    and s.peripherals["register"]["detail"]["pid"] not in (0, first)
                )
            )
        finally:
            code = appliance.stop()
    assert answered.ok, answered.error
    assert answered.result == {"restarting": True, "replaced_pid": first}
    assert isinstance(restarted, Event)
    assert restarted.body["why"] == "restart command"
    register = state.peripherals["register"]
    assert register["counters"] == {"starts": 2, "failures": 0}
    assert register["error"] is None
    assert not psutil.pid_exists(first)
    assert code == 0


async def test_logs_are_not_sent_to_a_control_plane_outside_the_pinned_root(
    mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> None:
    """An HTTPS control plane the fleet CA did not certify: the upload refused, nothing sent."""
    device_id = new_device_id()
    stranger_ca = make_ca(tmp_path / "stranger-ca")
    cert, key = served_under(stranger_ca, tmp_path / "https")
    appliance = AgentProcess(
        workdir=tmp_path / "appliance", device_id=device_id, broker_url=mosquitto.url
    )
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"
    async with served_control_plane(
        database_url=database_url, broker_url=mosquitto.url, tls_cert=cert, tls_key=key
    ) as cloud:
        await register_device(database_url, device_id)
        await issued_identity(
            cloud.app.state.engine,
            fleet_ca,
            device_id=device_id,
            identity_dir=appliance.data_dir / FIXED_IDENTITY_SUBDIR,
        )
        appliance.control_plane_url = cloud.url
        async with asyncio.timeout(GUARD_S), control_plane(mosquitto.url, device_id) as cp:
            appliance.start()
            try:
                await cp.next(lambda m: isinstance(m, State))  # online: commands are heard
                uploaded = await cp.call("logs.upload")
            finally:
                code = appliance.stop()
        async with cloud.client(verify=False) as operator:
            listed = await operator.get(f"/api/devices/{device_id}/logs")
    assert (uploaded.ok, code) == (False, 0)
    assert uploaded.error is not None
    assert "cannot be reached" in uploaded.error
    assert "CERTIFICATE_VERIFY_FAILED" in uploaded.error
    assert listed.status_code == 200, listed.text
    assert listed.json() == []
