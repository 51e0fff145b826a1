"""The amd64 twin in its store: enrolled by a QR, selling, replicating, and a power cut.

Every part real: the control plane served by uvicorn on the host (SQLite) with its fleet CA,
Mosquitto as shipped on its mTLS listener with the control plane's ingest and configuration link
on the service listener, and the appliance image booted in qemu (KVM when it runs OVMF, TCG
otherwise) with user-mode networking, where the host is 10.0.2.2. The test reaches the
appliance only as a store would: the kiosk through the forwarded port (the touchscreen's API),
and, with the machine off, its data partition (what support would read from the disk).

1. First boot: the kiosk shows the enrolment screen; the QR an operator printed (its control
   plane URL as the store's network sees the host) is scanned; the appliance enrols, the agent
   applies the store's configuration, a cashier signs in and rings sales; the cloud stores them.
2. Power cut (qemu killed right after a sale was answered) and boot again: every sale the kiosk
   answered is in the ledger (SQLite's integrity check ok, the hash chain whole), the shift is
   still open, a new sale is rung, replication resumes and the cloud holds every sale once,
   receipt numbers 1..N without a gap.
3. A broken OS update (tests/images/test_appliance_image.py's system with no init) written into
   slot B of the enrolled appliance: its one try fails, the appliance comes back on slot A by
   itself, and the cloud's API shows the device's OS update ``reverted`` as an error among its
   problems — the failure the agent reports, never a success.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from edge.ledger import Ledger
from protocols.vocabulary import JournalKind
from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import Fleet
from tests.edge.enrolment.cloud_rig import scanned_qr
from tests.harness.services import free_port, wait_until
from tests.images.appliance_vm import (
    ApplianceVM,
    BuiltImage,
    boot_seconds,
    broken_system,
    built_image,
    fresh_disk,
    install_into_slot_b,
    missing_tools,
    why_not_boot,
)
from tests.images.store_rig import (
    PIN,
    Kiosk,
    Store,
    cloud_receipts,
    ledger_from_disk,
    replicated,
    shows,
    staff_ready,
    store_for_appliance,
    vm_qr,
)

pytestmark = [
    pytest.mark.image,
    pytest.mark.slow,
    pytest.mark.timeout(5400),
    pytest.mark.skipif(bool(missing_tools()), reason=f"cannot build/boot: {missing_tools()}"),
]

SALES_BEFORE_CUT = 3


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return built_image("amd64")


@pytest.fixture
def rebootable() -> None:
    """Two boots: under KVM, or under TCG with STOREFLEET_IMAGE_TCG=all."""
    if why := why_not_boot(2):
        pytest.skip(why)


@pytest.fixture
async def store(fleet_ca: CertificateAuthority, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_for_appliance(fleet_ca, tmp_path) as running:
        yield running


async def test_enrol_sell_power_cut_and_replicate(
    image: BuiltImage, store: Store, tmp_path: Path, rebootable: None
) -> None:
    fleet = store.fleet
    created = await fleet.create_enrolment(register_name="till 1")
    qr = vm_qr(fleet, await scanned_qr(fleet, created))
    disk, efivars = fresh_disk(image, tmp_path, grow_by_mib=512)
    guard = boot_seconds()

    first = ApplianceVM(disk, efivars, tmp_path / "first.console", free_port())
    first.start()
    receipts: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=first.kiosk_url, timeout=60) as client:
            kiosk = Kiosk(client)
            await until(
                first,
                lambda: shows(kiosk, lambda s: s["first_boot"]["phase"] == "waiting"),
                "the enrolment screen",
                guard,
            )
            scan = await client.post("/api/enrolment/scan", json={"text": qr})
            assert scan.status_code == 202, scan.text
            await until(
                first,
                lambda: shows(kiosk, staff_ready),
                "enrolled and the store's configuration applied",
                guard,
            )
            device_id = (await fleet.enrolment(created["enrolment"]["id"]))["device_id"]
            await kiosk.post("signin", {"employee_id": store.cashier, "pin": PIN})
            await kiosk.post("shift/open", {"amount_minor": 10000})
            await until(first, kiosk.scanned, "the catalog synced from the cloud", guard)
            receipts.append(await kiosk.sell_milk(scanned=True))
            await until(
                first, lambda: replicated(fleet, device_id, 1), "the first sale replicated", guard
            )
            for _ in range(SALES_BEFORE_CUT - 1):
                receipts.append(await kiosk.sell_milk())
    finally:
        first.power_cut()  # the plug pulled right after the last answered sale

    second = ApplianceVM(disk, efivars, tmp_path / "second.console", free_port())
    second.start()
    try:
        async with httpx.AsyncClient(base_url=second.kiosk_url, timeout=60) as client:
            kiosk = Kiosk(client)
            await until(
                second,
                lambda: shows(kiosk, staff_ready),
                "the register back after the power cut",
                guard,
            )
            after_cut = await kiosk.state()
            await kiosk.post("signin", {"employee_id": store.cashier, "pin": PIN})
            receipts.append(await kiosk.sell_milk())  # the shift survived: no shift/open
            await until(
                second,
                lambda: replicated(fleet, device_id, len(receipts)),
                "every sale replicated after the power cut",
                guard,
            )
    finally:
        await asyncio.to_thread(second.power_off)

    assert after_cut is not None
    assert after_cut["enrolled"] is True
    assert await cloud_receipts(fleet, device_id) == list(range(1, len(receipts) + 1))
    assert len(set(receipts)) == len(receipts)
    # the disk as support would read it: SQLite's own check, the hash chain walked, every sale
    path = ledger_from_disk(disk, tmp_path)
    async with Ledger(path, register_id="1") as ledger:
        assert await ledger.integrity_check() == "ok"
        assert await ledger.verify_chain() == ledger.last_seq
    with sqlite3.connect(path) as db:
        (sold,) = db.execute(
            "SELECT count(*) FROM journal WHERE kind = ?", (JournalKind.SALE_COMPLETED.value,)
        ).fetchone()
    assert sold == len(receipts)  # every answered sale, none twice


async def test_a_broken_os_update_falls_back_and_the_cloud_sees_the_revert(
    image: BuiltImage, store: Store, tmp_path: Path, rebootable: None
) -> None:
    fleet = store.fleet
    created = await fleet.create_enrolment(register_name="till 1")
    qr = vm_qr(fleet, await scanned_qr(fleet, created))
    disk, efivars = fresh_disk(image, tmp_path, grow_by_mib=256)
    guard = boot_seconds()

    first = ApplianceVM(disk, efivars, tmp_path / "enrol.console", free_port())
    first.start()
    try:
        async with httpx.AsyncClient(base_url=first.kiosk_url, timeout=60) as client:
            kiosk = Kiosk(client)
            await until(
                first,
                lambda: shows(kiosk, lambda s: s["first_boot"]["phase"] == "waiting"),
                "the enrolment screen",
                guard,
            )
            scan = await client.post("/api/enrolment/scan", json={"text": qr})
            assert scan.status_code == 202, scan.text
            await until(first, lambda: shows(kiosk, staff_ready), "enrolled", guard)
            device_id = (await fleet.enrolment(created["enrolment"]["id"]))["device_id"]
            await until(first, lambda: os_update(fleet, device_id, ""), "the OS slot", guard)
    finally:
        await asyncio.to_thread(first.power_off)

    attempt = install_into_slot_b(image, disk, broken_system(tmp_path), version="broken-test")
    second = ApplianceVM(disk, efivars, tmp_path / "broken.console", free_port())
    second.start()
    try:
        await until(
            second,
            lambda: os_update(fleet, device_id, "reverted"),
            "the cloud shown the OS update reverted",
            guard * 2,  # the failed try and the boot back on slot A
        )
        status = await asyncio.to_thread(second.wait_for_status)
    finally:
        await asyncio.to_thread(second.power_off)
    assert status["slot"] == "a", second.tail()
    assert status.get("reverted") == "b", second.tail()
    answer = await fleet.api.get(f"/api/devices/{device_id}/state")
    assert answer.status_code == 200, answer.text
    reported = answer.json()
    entry = reported["peripherals"]["os"]
    assert entry["detail"]["slot"] == "a"
    assert entry["detail"]["update_version"] == "broken-test"
    assert entry["error"].startswith("OS update broken-test reverted")
    assert any(p.startswith("os: OS update broken-test reverted") for p in reported["problems"])
    assert attempt.startswith("broken-test@")


async def os_update(fleet: Fleet, device_id: str, outcome: str) -> bool:
    """Whether the device's reported ``os`` entry says ``outcome`` of its last OS update."""
    answer = await fleet.api.get(f"/api/devices/{device_id}/state")
    if answer.status_code != 200:
        return False
    entry = answer.json()["peripherals"].get("os")
    return entry is not None and entry["detail"]["update"] == outcome


async def until(
    vm: ApplianceVM, check: Callable[[], Awaitable[bool]], what: str, guard: float
) -> None:
    """Poll ``check`` each second; a failure shows the appliance's console."""
    try:
        await wait_until(check, timeout=guard, interval=1.0, what=what)
    except AssertionError as err:
        raise AssertionError(f"{err}\n--- console:\n{vm.tail()}") from None
