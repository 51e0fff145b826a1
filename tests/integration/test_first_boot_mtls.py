"""`storefleet register` as the appliance image runs it: first boot, mTLS, reboot, power cut.

A child process per boot (`python -m edge.cli register --identity-dir …`), driven only
through its kiosk API as the touchscreen would, against the control plane served by uvicorn
with its fleet CA, Mosquitto on the mTLS listener, and the control plane's ingest there. What
survives a reboot is exactly what is on disk: the identity directory and the ledger.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.ingest.worker import IngestWorker
from edge.enrolment.first_boot import ENROLMENT_FILE, enrol_from_qr
from edge.register.demo import DEMO_SETTINGS
from provisioning.ca import CertificateAuthority
from provisioning.device_keys import CERT_FILE, DeviceIdentity, IdentityState
from provisioning.enrolment import encode_qr, parse_qr
from tests.control_plane.provisioning.fleet_harness import (
    STORE,
    Fleet,
    MtlsBroker,
    seed_demo_catalog,
    served_fleet,
)
from tests.edge.enrolment.cloud_rig import cloud_sales, mtls_ingest, scanned_qr
from tests.harness.services import Mosquitto, free_port, wait_until

pytestmark = pytest.mark.services

MILK = "7610200000019"


@pytest.fixture
async def fleet(
    mosquitto: Mosquitto, fleet_ca: CertificateAuthority, mtls_broker: MtlsBroker, tmp_path: Path
) -> AsyncIterator[Fleet]:
    async with served_fleet(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        device_broker_url=mtls_broker.url,
        service_broker_url=mtls_broker.service_url,
        crl_file=mtls_broker.files.crlfile,
    ) as running:
        await seed_demo_catalog(running)  # an enrolled register syncs it (device-authenticated)
        yield running


@pytest.fixture
async def ingest(
    fleet: Fleet, mtls_broker: MtlsBroker, fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[IngestWorker]:
    async with mtls_ingest(
        fleet,
        broker_url=mtls_broker.service_url,
        ca=fleet_ca,
        identity_dir=tmp_path / "cp-identity",
    ) as worker:
        yield worker


@dataclass
class Boot:
    """One run of the register process and its kiosk API."""

    kiosk: httpx.AsyncClient
    process: asyncio.subprocess.Process

    async def state(self) -> dict[str, Any]:
        answer = await self.kiosk.get("/api/state")
        assert answer.status_code == 200, answer.text
        state: dict[str, Any] = answer.json()
        return state

    async def enrolled(self) -> bool:
        return bool((await self.state())["enrolled"])

    async def first_boot(self) -> dict[str, Any]:
        state: dict[str, Any] = (await self.state())["first_boot"]
        return state


@asynccontextmanager
async def boot(tmp_path: Path) -> AsyncIterator[Boot]:
    """Power on: the register process on the same disk every time; SIGTERM at the end."""
    port = free_port()
    # The demo's register settings (store document, catalog seed, simulated peripherals and card
    # terminal) with this appliance's own identity, data directory and kiosk port.
    argv = [sys.executable, "-m", "edge.cli", "register", "--settings", str(DEMO_SETTINGS)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
    env |= {
        "STOREFLEET_EDGE_IDENTITY_DIR": str(tmp_path / "appliance" / "identity"),
        "STOREFLEET_EDGE_DATA_DIR": str(tmp_path / "appliance"),
        "STOREFLEET_EDGE_KIOSK__PORT": str(port),
    }
    with (tmp_path / "register.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log, env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as kiosk:

            async def serving() -> bool:
                assert process.returncode is None, (tmp_path / "register.log").read_text()
                try:
                    return (await kiosk.get("/api/state")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(serving, what="the register's kiosk")
            yield Boot(kiosk=kiosk, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):  # guards against a hang; the exit code is the check
            exit_code = await process.wait()
        assert exit_code == 0, (tmp_path / "register.log").read_text()


async def sell_one_by_api(kiosk: httpx.AsyncClient, *, open_shift: bool = True) -> None:
    """What the cashier taps: sign in, open a shift (unless one survived), scan, pay cash."""
    steps = [
        ("signin", {"employee_id": "E01", "pin": "1234"}),
        ("shift/open", {"amount_minor": 10000}),
        ("scan", {"code": MILK}),
        ("pay/start", {}),
    ]
    for path, body in steps if open_shift else [steps[0], *steps[2:]]:
        answer = await kiosk.post(f"/api/{path}", json=body)
        assert answer.status_code == 200, answer.text
    due = answer.json()["state"]["register"]["payment"]["cash_due"]["minor"]
    paid = await kiosk.post("/api/pay/cash", json={"received_minor": due})
    assert paid.status_code == 200, paid.text


def appliance_identity(tmp_path: Path) -> DeviceIdentity:
    return DeviceIdentity(tmp_path / "appliance" / "identity")


async def test_first_boot_enrols_sells_over_mtls_and_a_reboot_comes_back_enrolled(
    fleet: Fleet, ingest: IngestWorker, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment(register_name="till 1")
    qr = await scanned_qr(fleet, created)

    async with boot(tmp_path) as first:
        before = await first.state()
        scan = await first.kiosk.post("/api/enrolment/scan", json={"text": qr})
        await wait_until(first.enrolled, what="enrolment to finish")
        enrolled_as = (await first.first_boot())["enrolled"]
        await sell_one_by_api(first.kiosk)
        await wait_until(lambda: _acked(first), what="the sale acknowledged by the cloud over mTLS")

    async with boot(tmp_path) as second:
        after_reboot = await second.state()
        await sell_one_by_api(second.kiosk, open_shift=False)  # the shift survived the reboot
        await wait_until(lambda: _acked(second), what="the second boot's sale acknowledged")

    device_id = appliance_identity(tmp_path).device_id()
    assert (before["enrolled"], before["first_boot"]["phase"]) == (False, "waiting")
    assert before["first_boot"]["codes"] is False  # no STOREFLEET_ENROL_*: QR only
    assert scan.status_code == 202
    assert enrolled_as["device_id"] == device_id
    assert enrolled_as["store"] == "High Street"
    assert after_reboot["enrolled"] is True
    assert "first_boot" not in after_reboot  # the saved identity is used, no enrolment desk
    assert [store for store, _sale in await cloud_sales(fleet, device_id)] == [STORE, STORE]


async def test_a_power_cut_before_the_certificate_was_saved_is_resumed_by_scanning_again(
    fleet: Fleet, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    qr = await scanned_qr(fleet, created)
    identity = appliance_identity(tmp_path)
    granted = await enrol_from_qr(qr, identity_dir=identity.directory)
    # the control plane answered, then the power went before the answer reached the disk
    (identity.directory / CERT_FILE).unlink()
    (identity.directory / ENROLMENT_FILE).unlink()
    assert identity.state() is IdentityState.KEY_ONLY

    async with boot(tmp_path) as after_power_cut:
        resumed_on = await after_power_cut.state()
        await after_power_cut.kiosk.post("/api/enrolment/scan", json={"text": qr})
        await wait_until(after_power_cut.enrolled, what="the resumed enrolment")

    assert resumed_on["enrolled"] is False
    assert identity.device_id() == granted.device_id  # the same key is the same device
    assert (await fleet.enrolment(created["enrolment"]["id"]))["device_id"] == granted.device_id


async def test_an_unreachable_control_plane_is_shown_and_a_second_scan_enrols(
    fleet: Fleet, tmp_path: Path
) -> None:
    created = await fleet.create_enrolment()
    qr = await scanned_qr(fleet, created)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: as if the uplink were down
    payload = parse_qr(qr)
    unreachable = encode_qr(payload.model_copy(update={"control_plane_url": nowhere}))

    async with boot(tmp_path) as till:
        await till.kiosk.post("/api/enrolment/scan", json={"text": unreachable})
        await wait_until(lambda: _phase(till, "refused"), what="the refusal")
        refused = await till.first_boot()
        await till.kiosk.post("/api/enrolment/scan", json={"text": qr})
        await wait_until(till.enrolled, what="the second scan to enrol")

    assert refused["refusal"]["reason"] == "unreachable"
    assert refused["refusal"]["advice"] == "Try again when the network is back."
    assert appliance_identity(tmp_path).state() is IdentityState.ENROLLED


async def _acked(boot: Boot) -> bool:
    state = await boot.state()
    return bool(state["link"]["online"]) and state["link"]["backlog"] == 0


async def _phase(boot: Boot, phase: str) -> bool:
    return bool((await boot.first_boot())["phase"] == phase)
