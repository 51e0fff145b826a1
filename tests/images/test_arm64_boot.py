"""The arm64 image's smoke boot: slot A's kernel and initramfs start the disk on qemu's emulated
``virt`` board (TCG) up to systemd on the system slot, opened through dm-verity.

No Raspberry Pi here, and no Raspberry Pi model in qemu 7.2 runs Debian's kernel to a disk: the
Pi's firmware and device tree are not what boots. What is checked is what a board boots after
its firmware: boot-a's own kernel, initramfs and command line, the initramfs's module list
(``BOARD_INITRAMFS_MODULES`` in images/build carries virt's virtio disk besides the Pi's SD and
USB storage), the dm-verity opener and the erofs root. Runs where test_arm64_image.py runs
(``STOREFLEET_IMAGE_TCG=all`` or ``STOREFLEET_IMAGE_DIR_ARM64``) and qemu-system-aarch64 is here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.images.appliance_vm import BuiltImage, built_image
from tests.images.test_arm64_image import fat_files, why_not_build

#: how long the smoke boot may take to reach systemd before the test gives up (a hang guard:
#: an emulated Cortex-A72 on a loaded 2-core host; not a speed figure)
GUARD_S = 1800
#: systemd colours its welcome line ("Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def why_not_boot() -> str | None:
    """Why the smoke boot does not run here (None: it does)."""
    if not shutil.which("qemu-system-aarch64"):
        return "no qemu-system-aarch64 (apt-get install qemu-system-arm)"
    return why_not_build()


pytestmark = [
    pytest.mark.image,
    pytest.mark.slow,
    pytest.mark.timeout(7200 + GUARD_S),  # the build, if the cache has none, then the boot
    pytest.mark.skipif(bool(why_not_boot()), reason=str(why_not_boot())),
]


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return built_image("arm64")


def test_slot_a_boots_to_systemd_on_its_verified_erofs_in_qemu_virt(
    image: BuiltImage, tmp_path: Path
) -> None:
    """boot-a's kernel and initramfs with boot-a's command line, the disk as a virtio disk
    (``snapshot=on``: the build stays as it is). systemd's welcome line comes from the system
    slot itself, so the initramfs found system-a by its PARTUUID, opened it through dm-verity
    with the root hash on the command line, and mounted its erofs. The console is ttyAMA0 (the
    board's is ttyS1) and the kernel is not quiet; ``-no-reboot`` ends qemu at a panic (the
    command line's panic=10 would otherwise reboot into the same failure until the guard)."""
    boot = fat_files(image, "boot-a")
    for name in ("vmlinuz", "initrd.img"):
        (tmp_path / name).write_bytes(boot[name])
    words = [
        w
        for w in boot["cmdline.txt"].decode().split()
        if not w.startswith(("console=", "systemd.show_status=")) and w != "quiet"
    ]
    console = tmp_path / "console"
    vm = subprocess.Popen(
        [
            "qemu-system-aarch64",
            "-M",
            "virt",
            "-cpu",
            "cortex-a72",
            "-accel",
            "tcg,thread=multi,tb-size=512",
            "-smp",
            "2",
            "-m",
            "2048",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{console}",
            "-kernel",
            str(tmp_path / "vmlinuz"),
            "-initrd",
            str(tmp_path / "initrd.img"),
            "-append",
            " ".join([*words, "console=ttyAMA0", "systemd.show_status=1"]),
            "-drive",
            f"file={image.disk},format=raw,if=virtio,snapshot=on",
            "-nic",
            "none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        text = ""
        deadline = time.monotonic() + GUARD_S
        while "Welcome to " not in text and time.monotonic() < deadline:
            if vm.poll() is not None:
                break
            time.sleep(2)
            text = ANSI.sub("", console.read_text(errors="replace")) if console.exists() else ""
    finally:
        vm.kill()
        _, errors = vm.communicate()
    text = ANSI.sub("", console.read_text(errors="replace")) if console.exists() else text
    tail = "\n".join(text.splitlines()[-40:])
    assert "Welcome to Debian GNU/Linux 12" in text, f"{errors.decode()}\n{tail}"
    uuids = image.manifest["partition_uuids"]
    assert isinstance(uuids, dict)
    opened = f"storefleet-verity: PARTUUID={uuids['system-a']} opened as /dev/mapper/system"
    assert opened in text, tail
    assert text.index(opened) < text.index("Welcome to Debian GNU/Linux 12")
