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
3. OS updates by the operator's ``os.install`` command (images copied onto the data partition
   first): a broken system (the kernel with no system, a root hash its slot does not hold) is
   written into slot B by the image's root helper and tried once; the try fails, the appliance
   comes back on slot A by itself, and the cloud's API shows the device's OS update
   ``reverted`` as an error among its problems — the failure the agent reports, never a
   success. Then the build's own system is installed the same way and committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from edge.ledger import Ledger
from protocols.vocabulary import JournalKind
from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import STORE, Fleet
from tests.edge.enrolment.cloud_rig import scanned_qr
from tests.harness.services import free_port, wait_until
from tests.images.appliance_vm import (
    ApplianceVM,
    BuiltImage,
    boot_seconds,
    broken_os_image,
    built_image,
    fresh_disk,
    loader_entries,
    missing_tools,
    put_on_data_partition,
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
    """The product's path end to end: OS images copied onto the data partition, installed by the
    operator's ``os.install`` command (the agent checks them, the image's root helper writes
    slot B and reboots into its one try). The broken one falls back to slot A by itself and the
    cloud sees the revert; the good one is committed and the appliance runs slot B."""
    fleet = store.fleet
    created = await fleet.create_enrolment(register_name="till 1")
    qr = vm_qr(fleet, await scanned_qr(fleet, created))
    disk, efivars = fresh_disk(image, tmp_path, grow_by_mib=1536)
    broken = broken_os_image(image, tmp_path, version="broken-test")
    good = image.system
    put_on_data_partition(
        disk,
        {
            "broken.erofs": broken,
            "broken.erofs.verity": broken.with_name(broken.name + ".verity"),
            "good.erofs": good,
            "good.erofs.verity": good.with_suffix(".verity"),
        },
        tmp_path,
    )
    guard = boot_seconds()
    started = time.monotonic()
    marks: dict[str, float] = {}

    vm = ApplianceVM(disk, efivars, tmp_path / "appliance.console", free_port())
    vm.start()  # one machine throughout: the helper's reboots and the fallback are its own
    try:
        await enrol(vm, qr, guard)
        device_id = (await fleet.enrolment(created["enrolment"]["id"]))["device_id"]
        await until(vm, lambda: os_update(fleet, device_id, ""), "the OS slot", guard)
        marks["enrolled"] = time.monotonic() - started

        answer = await install(fleet, device_id, "broken.erofs", broken)
        assert answer["ok"] is True, answer
        await until(
            vm,
            lambda: os_update(fleet, device_id, "reverted"),
            "the cloud shown the OS update reverted",
            guard * 3,  # the slot written, the failed try, the boot back on slot A
        )
        marks["reverted"] = time.monotonic() - started
        reported = await state(fleet, device_id)
        entry = reported["peripherals"]["os"]
        assert entry["detail"]["slot"] == "a", vm.tail()
        assert entry["detail"]["update_version"] == "broken-test"
        assert entry["error"].startswith("OS update broken-test reverted")
        assert any(p.startswith("os: OS update broken-test reverted") for p in reported["problems"])
        assert "storefleet-verity: PARTUUID=" in vm.console_text(), vm.tail()  # B refused
        # the fleet alert, opened by the control plane's evaluator (a tick a minute)
        await until(vm, lambda: reverted_alert(fleet, device_id, True), "the alert", guard)

        answer = await install(fleet, device_id, "good.erofs", good)
        assert answer["ok"] is True, answer
        await until(
            vm,
            lambda: os_update(fleet, device_id, "succeeded"),
            "the good OS update committed",
            guard * 3,  # the slot written, its try, the health gate passed
        )
        marks["committed"] = time.monotonic() - started
        reported = await state(fleet, device_id)
        entry = reported["peripherals"]["os"]
        assert entry["detail"]["slot"] == "b", vm.tail()
        assert entry["detail"]["boot"] == "committed"
        assert entry["error"] is None
        assert not any(p.startswith("os:") for p in reported["problems"])
        await until(vm, lambda: reverted_alert(fleet, device_id, False), "alert cleared", guard)
        steps = (await fleet.api.get(f"/api/devices/{device_id}/os-updates")).json()
        states = [(s["version"], s["state"]) for s in reversed(steps)]  # oldest first
        assert ("broken-test", "reverted") in states, states
        assert states[-1][1] == "succeeded", states
        assert states.index(("broken-test", "reverted")) < len(states) - 1
    finally:
        await asyncio.to_thread(vm.power_off)
        print(f"OS update test: {marks} (s since the first boot began)")
    # systemd-bless-boot committed B after the health gate: no counter left on its entry
    assert "storefleet-b.conf" in loader_entries(image, disk)


async def install(fleet: Fleet, device_id: str, name: str, source: Path) -> dict[str, Any]:
    """``os.install`` of ``name`` (a copy of ``source`` on the data partition) through the
    control plane's API, as an operator sends it; the device's answer."""
    size, sha256 = await asyncio.to_thread(size_and_sha256, source)
    sent = await fleet.api.post(
        f"/api/devices/{device_id}/commands",
        json={
            "name": "os.install",
            "args": {"image": name, "size": size, "sha256": sha256},
            "timeout_s": 600,  # the agent hashes the image under TCG first
        },
    )
    assert sent.status_code == 202, sent.text
    url = f"/api/devices/{device_id}/commands/{sent.json()['id']}"

    async def answered() -> bool:
        return (await fleet.api.get(url)).json()["status"] != "pending"

    await wait_until(answered, timeout=660, interval=2.0, what=f"the answer to os.install {name}")
    answer: dict[str, Any] = (await fleet.api.get(url)).json()
    return answer


async def reverted_alert(fleet: Fleet, device_id: str, open_: bool) -> bool:
    """Whether the device's "os update reverted" alert is open (``open_``) or not."""
    answer = await fleet.api.get("/api/alerts", params={"device_id": device_id})
    assert answer.status_code == 200, answer.text
    kinds = {alert["kind"] for alert in answer.json()}
    return ("os_update_reverted" in kinds) is open_


def size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


async def state(fleet: Fleet, device_id: str) -> dict[str, Any]:
    answer = await fleet.api.get(f"/api/devices/{device_id}/state")
    assert answer.status_code == 200, answer.text
    reported: dict[str, Any] = answer.json()
    return reported


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


async def test_support_ssh_is_opened_and_closed_by_the_store_configuration(
    image: BuiltImage, store: Store, tmp_path: Path, rebootable: None
) -> None:
    """Off on an enrolled box; the tenant admin's ``support`` setting (keys only) opens SSH for
    the user ``support`` and nobody else, without a password; taking it back closes it."""
    fleet = store.fleet
    created = await fleet.create_enrolment(register_name="till 1")
    qr = vm_qr(fleet, await scanned_qr(fleet, created))
    disk, efivars = fresh_disk(image, tmp_path, grow_by_mib=512)
    guard = boot_seconds()
    private = ed25519.Ed25519PrivateKey.generate()
    identity = tmp_path / "support_ed25519"
    identity.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    identity.chmod(0o600)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    setting = f"/api/config/stores/{STORE}/settings/support"

    vm = ApplianceVM(disk, efivars, tmp_path / "appliance.console", free_port())
    vm.start()
    try:
        await enrol(vm, qr, guard)
        assert not vm.ssh_banner().startswith(b"SSH-")  # enrolled, SSH still off

        value = {"ssh": True, "ssh_keys": [public.decode() + " support@test"]}
        opened = await fleet.api.put(setting, json={"value": value})
        assert opened.status_code == 200, opened.text
        await until(vm, lambda: ssh_answers(vm, True), "sshd started for support", guard)
        done = await ssh(vm, identity, "support", "id -un; findmnt -no OPTIONS /")
        assert done.returncode == 0, done.stderr
        user, options = done.stdout.splitlines()[:2]
        assert user == "support"
        assert options.split(",")[0] == "ro"  # the system slot, as ever
        as_root = await ssh(vm, identity, "root", "id -un")
        assert as_root.returncode == 255
        assert "Permission denied" in as_root.stderr
        password = await ssh(vm, None, "support", "id -un")
        assert password.returncode == 255  # no password, no keyboard-interactive
        assert "Permission denied (publickey)" in password.stderr

        closed = await fleet.api.put(setting, json={"value": {"ssh": False, "ssh_keys": []}})
        assert closed.status_code == 200, closed.text
        await until(vm, lambda: ssh_answers(vm, False), "sshd stopped", guard)
        assert "support-access: SSH off" in vm.console_text(), vm.tail()
    finally:
        await asyncio.to_thread(vm.power_off)


async def enrol(vm: ApplianceVM, qr: str, guard: float) -> None:
    """The field tech's scan of ``qr`` on the enrolment screen, through the forwarded kiosk;
    returns once the appliance is enrolled and configured (ready to sign a cashier in)."""
    async with httpx.AsyncClient(base_url=vm.kiosk_url, timeout=60) as client:
        kiosk = Kiosk(client)
        await until(
            vm,
            lambda: shows(kiosk, lambda s: s["first_boot"]["phase"] == "waiting"),
            "the enrolment screen",
            guard,
        )
        scan = await client.post("/api/enrolment/scan", json={"text": qr})
        assert scan.status_code == 202, scan.text
        await until(vm, lambda: shows(kiosk, staff_ready), "enrolled", guard)


async def ssh_answers(vm: ApplianceVM, on: bool) -> bool:
    return (await asyncio.to_thread(vm.ssh_banner)).startswith(b"SSH-") is on


async def ssh(
    vm: ApplianceVM, identity: Path | None, user: str, command: str
) -> subprocess.CompletedProcess[str]:
    """The host's OpenSSH client to the box's forwarded port; ``identity`` None: no key at all
    (a password is all it could try, and BatchMode answers none)."""
    argv = ["ssh", "-p", str(vm.ssh_port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=60"]
    argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    if identity is None:
        argv += ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password"]
    else:
        argv += ["-o", "IdentitiesOnly=yes", "-i", str(identity)]
    argv += [f"{user}@127.0.0.1", command]
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=300, check=False
    )
