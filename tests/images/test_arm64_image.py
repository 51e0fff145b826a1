"""The arm64 image for Raspberry Pi 4/5-class boards builds, laid out as the firmware reads it.

Built by ``images/build --arch arm64`` (mmdebstrap with qemu-user-static through binfmt: dpkg,
every maintainer script and the app's installation run emulated, so a cold build takes many
minutes; evdev is cross-compiled and the bytecode compiled on the host). It runs with
``STOREFLEET_IMAGE_TCG=all``, the heavy set, or tests the build that
``STOREFLEET_IMAGE_DIR_ARM64`` names. No Raspberry Pi here: what is checked is what the board's
firmware and Debian's kernel will read — the GPT with the config, boot and system slots and the
data partition where the manifest says, the firmware blobs and ``autoboot.txt`` (tryboot A/B) on
the config partition, each boot slot's ``config.txt`` and ``cmdline.txt`` naming its own system
partition through dm-verity, the kernel, initramfs and the Pi 4's device tree on slot A, an erofs
system slot, and a manifest whose sizes and sha256 are the artifacts'.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.images.appliance_vm import MIB, BuiltImage, built_image

BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
LAYOUT = ["config", "boot-a", "boot-b", "system-a", "system-b", "data"]
EROFS_MAGIC = 0xE0F5E1E2  # at byte 1024 of an erofs


def why_not_build() -> str | None:
    """Why the arm64 build does not run here (None: it does)."""
    if os.environ.get("STOREFLEET_IMAGE_DIR_ARM64"):
        return None
    if os.environ.get("STOREFLEET_IMAGE_TCG") != "all":
        return "the arm64 build runs emulated for many minutes: STOREFLEET_IMAGE_TCG=all runs it"
    if os.geteuid() != 0:
        return "images/build runs as root (mmdebstrap --mode=root)"
    missing = [
        t
        for t in ("mmdebstrap", "qemu-aarch64-static", "mkfs.erofs", "mcopy")
        if not shutil.which(t)
    ]
    if missing:
        return f"missing {', '.join(missing)} (.ci/test installs them)"
    if not BINFMT.exists() and not shutil.which("update-binfmts"):
        return (
            "the kernel cannot run aarch64 binaries: no binfmt_misc entry qemu-aarch64 and no"
            " update-binfmts to register it (install binfmt-support)"
        )
    return None


pytestmark = [
    pytest.mark.image,
    pytest.mark.slow,
    pytest.mark.timeout(7200),  # a cold arm64 build under qemu-user takes most of an hour
    pytest.mark.skipif(bool(why_not_build()), reason=str(why_not_build())),
]


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    built = built_image("arm64")
    if not BINFMT.exists():  # the build registers it; without it the build could not have run
        pytest.fail("the arm64 build finished without binfmt for aarch64")
    return built


def fat_files(image: BuiltImage, label: str) -> dict[str, bytes]:
    """Every file at the top of the FAT partition ``label``, read with mtools."""
    offset, _ = image.partition(label)
    spec = f"{image.disk}@@{offset}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(
        ["mdir", "-b", "-i", spec, "::/"], capture_output=True, text=True, check=True, env=env
    ).stdout
    out = {}
    for line in listing.splitlines():
        name = Path(line.strip()).name
        if not name:
            continue
        out[name] = subprocess.run(
            ["mtype", "-i", spec, f"::/{name}"], capture_output=True, check=True, env=env
        ).stdout
    return out


def test_the_manifest_names_every_artifact_and_the_boards_packages(image: BuiltImage) -> None:
    manifest = image.manifest
    assert manifest["arch"] == "arm64"
    artifacts = manifest["artifacts"]
    assert isinstance(artifacts, dict)
    assert set(artifacts) >= {"storefleet-arm64.img", "system-arm64.erofs"}
    for name, facts in artifacts.items():
        path = image.directory / name
        assert path.stat().st_size == facts["bytes"]
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(4 * MIB), b""):
                digest.update(block)
        assert digest.hexdigest() == facts["sha256"], name
    packages = {p["name"]: p for p in manifest["packages"]}  # type: ignore[attr-defined]
    for name in ("linux-image-arm64", "raspi-firmware", "systemd", "python3", "cage", "chromium"):
        assert name in packages, name
        assert packages[name]["arch"] in {"arm64", "all"}
        assert packages[name]["version"]
    python = {p["name"].lower() for p in manifest["python_packages"]}  # type: ignore[attr-defined]
    assert {"storefleet", "fastapi", "evdev", "aiomqtt"} <= python
    assert str(manifest["kernel"]).endswith("arm64")


def test_the_partition_table_is_the_manifests(image: BuiltImage) -> None:
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(image.disk)], capture_output=True, text=True, check=True
        ).stdout
    )["partitiontable"]
    assert table["label"] == "gpt"
    names = [p["name"] for p in table["partitions"]]
    assert names == LAYOUT
    uuids = image.manifest["partition_uuids"]
    assert isinstance(uuids, dict)
    for number, part in enumerate(table["partitions"], start=1):
        offset, size = image.partition(part["name"])
        assert part["start"] * 512 == offset, part
        assert part["size"] * 512 == size, part
        assert part["uuid"].lower() == uuids[part["name"]]
        assert part["node"].endswith(str(number))
    with image.disk.open("rb") as disk:
        for slot in ("system-a",):
            offset, _ = image.partition(slot)
            disk.seek(offset + 1024)
            assert int.from_bytes(disk.read(4), "little") == EROFS_MAGIC, slot


def test_the_config_partition_boots_slot_a_and_tries_slot_b_once(image: BuiltImage) -> None:
    config = fat_files(image, "config")
    # the Pi 4's firmware (Debian's raspi-firmware, non-free-firmware)
    assert {"start4.elf", "fixup4.dat"} <= set(config), sorted(config)
    autoboot = config["autoboot.txt"].decode()
    # partition 2 is boot-a, 3 boot-b (GPT order above); tryboot boots the other one once
    assert "tryboot_a_b=1" in autoboot
    assert autoboot.index("boot_partition=2") < autoboot.index("[tryboot]")
    assert autoboot.index("[tryboot]") < autoboot.index("boot_partition=3")


def test_boot_slot_a_starts_debians_kernel_on_system_a(image: BuiltImage) -> None:
    boot = fat_files(image, "boot-a")
    uuids = image.manifest["partition_uuids"]
    assert isinstance(uuids, dict)
    config = boot["config.txt"].decode()
    for line in ("arm_64bit=1", "kernel=vmlinuz", "initramfs initrd.img followkernel"):
        assert line in config.splitlines(), config
    cmdline = boot["cmdline.txt"].decode()
    # the initramfs opens system-a through dm-verity as /dev/mapper/system (images/README.md)
    assert "root=/dev/mapper/system" in cmdline.split()
    assert f"storefleet.system=PARTUUID={uuids['system-a']}" in cmdline.split()
    verity = image.manifest["verity"]
    assert isinstance(verity, dict)
    assert f"storefleet.verity={verity['root_hash']}" in cmdline.split()
    assert "storefleet.slot=a" in cmdline
    assert "rootfstype=erofs" in cmdline
    assert " ro " in f" {cmdline} "
    assert boot["vmlinuz"][0x38:0x3C] == b"ARM\x64"  # an arm64 Image (maybe in an EFI stub)
    assert "bcm2711-rpi-4-b.dtb" in boot
    assert len(boot["initrd.img"]) > MIB
    assert fat_files(image, "boot-b") == {}  # filled by the first OS update


def test_the_data_partition_holds_the_stores_directories(image: BuiltImage) -> None:
    offset, size = image.partition("data")
    data = image.directory / "data.ext4"
    try:
        with image.disk.open("rb") as disk, data.open("wb") as out:
            disk.seek(offset)
            out.write(disk.read(size))
        listing = subprocess.run(
            ["debugfs", "-R", "ls -p /", str(data)], capture_output=True, text=True, check=True
        ).stdout
    finally:
        data.unlink(missing_ok=True)
    names = {line.split("/")[5] for line in listing.splitlines() if line.count("/") >= 6}
    assert {"storefleet", "log", "systemd"} <= names
