"""The amd64 twin of the appliance image, booted in qemu (UEFI, KVM when present).

First boot (one boot for two tests): the system slot is mounted read-only (writing to it is
refused), the data partition read-write and grown into the disk's free space, the fleet agent is
active, its register passes the health gate and its kiosk answers through the forwarded port with
the enrolment screen (the appliance is not enrolled). On the machine's screen, cage and Chromium
show that page; killed (the keyboard's SAK, Alt+SysRq+K: the kernel kills every process of the
kiosk's terminal), the session comes back by itself and shows it again. A Chromium that runs but
never opens the page (the twin's white screen: images/README.md, the kiosk session) is started
again by the session's wrapper; the test waits for the page through that, a boot's time at most.

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
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.harness.services import free_port
from tests.images.appliance_vm import (
    MIB,
    ApplianceVM,
    BuiltImage,
    boot_seconds,
    broken_system,
    built_image,
    fresh_disk,
    install_into_slot_b,
    loader_entries,
    missing_tools,
    why_not_boot,
)

ROOT = Path(__file__).resolve().parents[2]
#: the screens the kiosk test saw, as PNG (artifacts/ is not committed; CI keeps it)
ARTIFACTS = ROOT / "artifacts" / "appliance"
#: edge/kiosk/static/kiosk.css: the status bar (#bar, 48 px high) and the page's background
KIOSK_BAR = (0x11, 0x18, 0x27)
KIOSK_BACKGROUND = {(0xF3, 0xF4, 0xF6), (0xFF, 0xFF, 0xFF)}  # --bg and the panels

pytestmark = [
    pytest.mark.image,
    pytest.mark.slow,
    pytest.mark.timeout(3600),  # a cold build takes minutes; boots under TCG take minutes each
    pytest.mark.skipif(bool(missing_tools()), reason=f"cannot build/boot: {missing_tools()}"),
]


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
    # the twin runs the board's kiosk session: cage, Chromium and a font for the page
    assert {"cage", "chromium", "fonts-dejavu-core"} <= set(packages)
    python = {p["name"].lower() for p in manifest["python_packages"]}  # type: ignore[attr-defined]
    assert {"storefleet", "fastapi", "evdev", "aiomqtt"} <= python
    assert list(manifest["layout"]) == ["esp", "system-a", "system-b", "data"]  # type: ignore[call-overload]


@dataclass(frozen=True)
class FirstBoot:
    """A fresh appliance, booted once and settled (its status line printed)."""

    vm: ApplianceVM
    status: dict[str, str]
    data_size: int  # bytes of the data partition in the image, before it grew


@pytest.fixture(scope="module")
def first_boot(image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstBoot]:
    """One boot under KVM, or under TCG with STOREFLEET_IMAGE_TCG=1 (minutes), for two tests."""
    if why := why_not_boot(1):
        pytest.skip(why)
    directory = tmp_path_factory.mktemp("first-boot")
    disk, efivars = fresh_disk(image, directory, grow_by_mib=1024)
    with boot(disk, efivars, directory, "first") as vm:
        yield FirstBoot(vm, vm.wait_for_status(), image.partition("data")[1])


def test_first_boot(first_boot: FirstBoot) -> None:
    vm, status = first_boot.vm, first_boot.status
    assert status["slot"] == "a", vm.tail()
    assert status["root"] == "ro", vm.tail()
    assert status["data"] == "rw", vm.tail()
    # writes outside the data partition fail: root's touch in /usr (the system slot's erofs)
    assert status["system_write"] == "refused", vm.tail()
    assert status["verity"] == "verified", vm.tail()  # the root is dm-verity's device
    # grown into the GiB the disk gained (ext4 keeps some for itself)
    assert int(status["data_bytes"]) > first_boot.data_size + 900 * MIB, status
    assert status["agent"] == "active", vm.tail()
    assert status["healthy"] == "active", vm.tail()
    assert len(status["machine_id"]) == 32
    code, body = get(f"{vm.kiosk_url}/healthz")
    assert code == 503, body  # answering, not ready to sell: not enrolled yet
    assert '"enrolled":false' in body.replace(" ", "")
    code, page = get(f"{vm.kiosk_url}/")
    assert code == 200
    assert "enrol" in page.lower()
    # SSH is off until the fleet's configuration turns it on with keys: nothing answers on 22
    assert not vm.ssh_banner().startswith(b"SSH-"), vm.tail()


def shows_the_kiosk(screen: Path) -> bool:
    """Whether the screen is the kiosk's page: its dark status bar across the top and its light
    background below (the text console, a black screen and Chromium's own error page are not)."""
    with Image.open(screen) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    bar = rgb.crop((0, 8, width, 40)).getcolors(width * 32) or []
    page = rgb.crop((0, 60, width, height)).getcolors(width * (height - 60)) or []
    bar_share = sum(n for n, colour in bar if colour == KIOSK_BAR) / (width * 32)
    page_share = sum(n for n, colour in page if colour in KIOSK_BACKGROUND) / (
        width * (height - 60)
    )
    return bar_share > 0.6 and page_share > 0.5


def wait_for(what: str, vm: ApplianceVM, done: Callable[[], bool]) -> None:
    """Poll ``done`` until it holds; the guard is a boot's time (only against hangs)."""
    deadline = time.monotonic() + boot_seconds()
    while not done():
        assert time.monotonic() < deadline, f"{what}: not seen\n{vm.tail()}"
        time.sleep(1)


def kiosk_on_screen(vm: ApplianceVM, directory: Path, name: str) -> None:
    """Wait until the screen shows the kiosk's page; keep the screen seen as an artifact."""
    shot = directory / f"{name}.ppm"

    def seen() -> bool:
        return shows_the_kiosk(vm.screendump(shot))

    try:
        wait_for(f"the kiosk page on the screen ({name})", vm, seen)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if shot.exists():
            with Image.open(shot) as image:
                image.save(ARTIFACTS / f"{name}.png")


def test_the_kiosk_shows_the_enrolment_screen_and_comes_back_when_killed(
    first_boot: FirstBoot, tmp_path: Path
) -> None:
    vm = first_boot.vm
    # the session is up (its console line), and Chromium in cage draws the register's page:
    # the enrolment screen, the only one an appliance that is not enrolled shows
    wait_for("the kiosk session up", vm, lambda: bool(vm.kiosk_starts()))
    kiosk_on_screen(vm, tmp_path, "kiosk-first-boot")
    assert get(f"{vm.kiosk_url}/healthz")[0] == 503  # still not enrolled
    before = vm.kiosk_starts()[-1]

    # Alt+SysRq+K on the keyboard (SAK): the kernel kills with SIGKILL the foreground
    # terminal's session and every process that has it open (the kiosk's tty7: the wrapper,
    # cage and Chromium). Nobody stops the unit: systemd sees its process killed and starts it
    # again (Restart=always).
    vm.sendkey("alt-sysrq-k")
    # restarted by systemd: its restart counter went up (by more than one if a start failed
    # while logind came back)
    wait_for("the kiosk session back", vm, lambda: vm.kiosk_starts()[-1] > before)
    # a new Chromium (the old one's cgroup is empty before a restart) shows the page again
    kiosk_on_screen(vm, tmp_path, "kiosk-after-kill")


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
