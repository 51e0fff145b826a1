"""The amd64 twin of the appliance image, booted in qemu (UEFI, KVM when present).

First boot: the system slot is mounted read-only (writing to it is refused), the data partition
read-write and grown into the disk's free space, the fleet agent is active, its register passes
the health gate and its kiosk answers through the forwarded port with the enrolment screen (the
appliance is not enrolled).

OS update with fallback: a broken system written into slot B is tried once (boot counting),
fails, and the appliance comes back on slot A by itself and says slot B was reverted; a good
system in slot B passes the health gate and is committed, and the machine id is the one slot A
had (it lives on the data partition).

The image is built by ``images/build`` once per set of inputs (cached outside the repository,
see appliance_vm.py); a cold build downloads Debian's packages and PyPI's wheels (minutes), a
warm one only rebuilds from the caches.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.harness.services import free_port
from tests.images.appliance_vm import (
    MIB,
    ApplianceVM,
    BuiltImage,
    broken_system,
    built_image,
    fresh_disk,
    install_into_slot_b,
    loader_entries,
    missing_tools,
    why_not_boot,
)

pytestmark = [
    pytest.mark.image,
    pytest.mark.slow,
    pytest.mark.timeout(3600),  # a cold build takes minutes; boots under TCG take minutes each
    pytest.mark.skipif(bool(missing_tools()), reason=f"cannot build/boot: {missing_tools()}"),
]


@pytest.fixture
def bootable() -> None:
    """One boot: under KVM, or under TCG with STOREFLEET_IMAGE_TCG=1 (minutes)."""
    if why := why_not_boot(1):
        pytest.skip(why)


@pytest.fixture
def rebootable() -> None:
    """Several boots: under KVM, or under TCG with STOREFLEET_IMAGE_TCG=all."""
    if why := why_not_boot(3):
        pytest.skip(why)


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return built_image("amd64")


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET (an HTTP error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def boot(disk: Path, efivars: Path, tmp_path: Path, name: str) -> ApplianceVM:
    return ApplianceVM(disk, efivars, tmp_path / f"{name}.console", free_port())


def system_partition(image: BuiltImage, slot: str, out: Path) -> Path:
    """The system partition ``slot`` of the built disk, copied into ``out``."""
    offset, size = image.partition(slot)
    with image.disk.open("rb") as disk, out.open("wb") as copy:
        disk.seek(offset)
        left = size
        while left:
            block = disk.read(min(left, 4 * MIB))
            copy.write(block)
            left -= len(block)
    return out


def verify(partition: Path, verity: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``veritysetup verify`` of the partition against the manifest's root hash (userspace)."""
    return subprocess.run(
        [
            "veritysetup",
            "verify",
            f"--hash-offset={verity['hash_offset']}",
            str(partition),
            str(partition),
            verity["root_hash"],
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(shutil.which("veritysetup") is None, reason="no veritysetup (cryptsetup-bin)")
def test_a_flipped_byte_on_the_system_slot_fails_its_root_hash(
    image: BuiltImage, tmp_path: Path
) -> None:
    verity = image.manifest["verity"]
    assert isinstance(verity, dict)
    entry = (image.directory / "system-amd64.verity").read_text()
    assert f"root_hash={verity['root_hash']}" in entry.splitlines()
    partition = system_partition(image, "system-a", tmp_path / "system-a")
    good = verify(partition, verity)
    assert good.returncode == 0, good.stderr
    # one byte in the middle of the erofs, as a failing card or a tamperer would change it
    where = verity["hash_offset"] // 2
    with partition.open("r+b") as f:
        f.seek(where)
        byte = f.read(1)
        f.seek(where)
        f.write(bytes([byte[0] ^ 0x01]))
    bad = verify(partition, verity)
    assert bad.returncode != 0
    assert "failed" in (bad.stdout + bad.stderr).lower()


def test_manifest_names_every_artifact_and_package(image: BuiltImage) -> None:
    manifest = image.manifest
    artifacts = manifest["artifacts"]
    assert isinstance(artifacts, dict)
    assert set(artifacts) >= {"storefleet-amd64.img", "system-amd64.erofs"}
    for name, facts in artifacts.items():
        assert (image.directory / name).stat().st_size == facts["bytes"]
        assert len(facts["sha256"]) == 64
    packages = {p["name"]: p["version"] for p in manifest["packages"]}  # type: ignore[attr-defined]
    assert {"systemd", "python3", "linux-image-amd64", "initramfs-tools"} <= set(packages)
    assert "chromium" not in packages  # the twin leaves the browser out
    python = {p["name"].lower() for p in manifest["python_packages"]}  # type: ignore[attr-defined]
    assert {"storefleet", "fastapi", "evdev", "aiomqtt"} <= python
    assert list(manifest["layout"]) == ["esp", "system-a", "system-b", "data"]  # type: ignore[call-overload]


@pytest.mark.usefixtures("bootable")
def test_first_boot(image: BuiltImage, tmp_path: Path) -> None:
    disk, efivars = fresh_disk(image, tmp_path, grow_by_mib=1024)
    _, data_size = image.partition("data")
    with boot(disk, efivars, tmp_path, "first") as vm:
        status = vm.wait_for_status()
        assert status["slot"] == "a", vm.tail()
        assert status["root"] == "ro", vm.tail()
        assert status["data"] == "rw", vm.tail()
        assert status["system_write"] == "refused", vm.tail()
        assert status["verity"] == "verified", vm.tail()  # the root is dm-verity's device
        # grown into the GiB the disk gained (ext4 keeps some for itself)
        assert int(status["data_bytes"]) > data_size + 900 * MIB, status
        assert status["agent"] == "active", vm.tail()
        assert status["healthy"] == "active", vm.tail()
        assert len(status["machine_id"]) == 32
        code, body = get(f"{vm.kiosk_url}/healthz")
        assert code == 503, body  # answering, not ready to sell: not enrolled yet
        assert '"enrolled":false' in body.replace(" ", "")
        code, page = get(f"{vm.kiosk_url}/")
        assert code == 200
        assert "enrol" in page.lower()


@pytest.mark.usefixtures("rebootable")
def test_broken_update_falls_back_then_good_update_commits(
    image: BuiltImage, tmp_path: Path
) -> None:
    disk, efivars = fresh_disk(image, tmp_path, grow_by_mib=256)
    install_into_slot_b(image, disk, broken_system(tmp_path), tries=1)
    assert loader_entries(image, disk) == ["storefleet-a.conf", "storefleet-b+1.conf"]
    with boot(disk, efivars, tmp_path, "broken") as vm:
        status = vm.wait_for_status(boots=2)
        assert status["slot"] == "a", vm.tail()
        assert status.get("reverted") == "b", vm.tail()
        # slot A's root hash does not describe what is in B: the initramfs refuses to open it
        assert "storefleet-verity: PARTUUID=" in vm.console_text(), vm.tail()
        machine_id = status["machine_id"]
    # systemd-boot used B's only try; the entry stays marked bad, A stays the default
    assert loader_entries(image, disk) == ["storefleet-a.conf", "storefleet-b+0-1.conf"]

    install_into_slot_b(image, disk, image.system, tries=1)
    entries = loader_entries(image, disk)
    assert "storefleet-b+1.conf" in entries
    with boot(disk, efivars, tmp_path, "good") as vm:
        status = vm.wait_for_status()
        assert status["slot"] == "b", vm.tail()
        assert status["healthy"] == "active", vm.tail()
        assert status["root"] == "ro"
        # the appliance's machine id is kept on the data partition, not in a system slot
        assert status["machine_id"] == machine_id
    # systemd-bless-boot committed B after the health gate: no counter left on its entry
    assert "storefleet-b.conf" in loader_entries(image, disk)
