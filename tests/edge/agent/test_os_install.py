"""``os.install``: the agent checks a local OS image and hands it to the image's root helper, which
writes the other system slot and arms one boot try (issue 15).

Off the image, on files: the appliance's data directory, a boot state as ``slot state`` writes
it, an ESP directory with slot A's committed entry, and the inactive system slot as a regular
file (``STOREFLEET_PARTLABELS`` points ``system-b`` at it). The helper is the image's own
``libexec/os-install`` running the image's own ``slot install`` (it mounts the erofs it wrote,
so those cases need root and mkfs.erofs, as the image tests do). A refusal is an answer with its
reason, counted, and nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from edge.agent.commands import CommandHandler, CommandRunner
from edge.agent.os_install import PENDING_LIMIT_S, OsInstallCommandArgs, OsInstaller
from edge.agent.os_update import OsUpdateReporter
from protocols.messages import Command
from protocols.release_bundle import ReleaseProgress
from protocols.vocabulary import CommandName, EventKind

ROOT = Path(__file__).resolve().parents[3]
LIBEXEC = ROOT / "images/rootfs/usr/lib/storefleet/libexec"
MIB = 1024 * 1024
ENTRY_A = (
    "title storefleet appliance (slot A)\nsort-key storefleet\nversion 1\n"
    "linux /a/vmlinuz\ninitrd /a/initrd.img\n"
    "options root=/dev/mapper/system storefleet.system=PARTUUID=aaaa storefleet.verity="
    + "a" * 64
    + " storefleet.verity_hash_offset=4096 rootfstype=erofs ro storefleet.slot=a panic=10\n"
)
can_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mkfs.erofs") is None,
    reason="slot install mounts the erofs it wrote: root and mkfs.erofs (erofs-utils)",
)


class Appliance:
    """The files one appliance's agent and root helper see."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.data = directory / "data"
        self.run = directory / "run"
        self.boot_state = self.run / "boot-state"
        self.efi = directory / "efi"
        self.slot_b = directory / "system-b"
        self.rebooted = directory / "rebooted"
        (self.data / "os-images").mkdir(parents=True)
        self.run.mkdir()
        self.boot_state.write_text("slot=a\nversion=amd64-one\nboot=committed\nattempt=\n")
        (self.efi / "loader/entries").mkdir(parents=True)
        (self.efi / "loader/entries/storefleet-a.conf").write_text(ENTRY_A)
        (directory / "cmdline").write_text("root=/dev/mapper/system storefleet.slot=a ro\n")
        with self.slot_b.open("wb") as slot:
            slot.truncate(16 * MIB)
        labels = directory / "by-partlabel"
        labels.mkdir()
        (labels / "system-b").symlink_to(self.slot_b)

    def image(self, name: str, *, version: str = "amd64-two", verity: bool = True) -> Path:
        """An OS image as images/build makes one: an erofs with a kernel, its initrd and the
        OS version, and its dm-verity root hash beside it."""
        tree = self.dir / f"tree-{name}"
        (tree / "boot").mkdir(parents=True)
        (tree / "boot/vmlinuz-6.1.0-test").write_bytes(b"kernel " * 1000)
        (tree / "boot/initrd.img-6.1.0-test").write_bytes(b"initrd " * 1000)
        (tree / "usr/lib/storefleet").mkdir(parents=True)
        (tree / "usr/lib/storefleet/os-version").write_text(f"{version}\n")
        image = self.data / "os-images" / name
        subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tree)], check=True)
        if verity:
            sidecar = image.with_name(name + ".verity")
            sidecar.write_text(f"root_hash={'b' * 64}\nhash_offset={image.stat().st_size}\n")
        return image

    def helper(self) -> subprocess.CompletedProcess[str]:
        """The image's root helper, as storefleet-os-install.service runs it."""
        env = {
            "PATH": os.environ["PATH"],
            "STOREFLEET_DATA": str(self.data),
            "STOREFLEET_OS_INSTALL_RESULT": str(self.run / "install-result"),
            "STOREFLEET_SLOT_TOOL": str(LIBEXEC / "slot"),
            "STOREFLEET_CMDLINE": str(self.dir / "cmdline"),
            "STOREFLEET_EFI": str(self.efi),
            "STOREFLEET_PARTLABELS": str(self.dir / "by-partlabel"),
            "STOREFLEET_REBOOT_DELAY": "0",
            "STOREFLEET_REBOOT": f"touch {self.rebooted}",
        }
        return subprocess.run(
            ["sh", str(LIBEXEC / "os-install")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def result(self) -> dict[str, str]:
        text = (self.run / "install-result").read_text()
        return dict(line.split("=", 1) for line in text.splitlines())

    def entries(self) -> list[str]:
        return sorted(p.name for p in (self.efi / "loader/entries").iterdir())


@pytest.fixture
def appliance(tmp_path: Path) -> Appliance:
    return Appliance(tmp_path / "appliance")


def runner_for(appliance: Appliance) -> CommandRunner:
    installer = OsInstaller(data_dir=appliance.data, boot_state=appliance.boot_state)
    handler = CommandHandler(OsInstallCommandArgs, installer.install)
    return CommandRunner(device_id="os-r1", handlers={CommandName.OS_INSTALL: handler})


def body(source: Path, **changed: Any) -> dict[str, Any]:
    data = source.read_bytes()
    sent = {"image": source.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return sent | changed


def refused(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "storefleet_agent_os_install_refused_total", {"reason": reason}
    )
    return value or 0.0


class Events(list[tuple[str, str, str]]):
    def emit(self, kind: str, event: dict[str, Any]) -> None:
        assert kind == EventKind.OS_UPDATE
        said = ReleaseProgress.model_validate(event)  # what the cloud parses
        self.append((said.version, said.state.value, said.detail or ""))


@can_mount
async def test_a_good_image_is_written_to_the_other_slot_and_tried_once(
    appliance: Appliance,
) -> None:
    image = appliance.image("system-two.erofs")
    answer = await runner_for(appliance).run(
        Command(id="c-1", name=CommandName.OS_INSTALL, args=body(image))
    )
    assert answer.ok, answer.error
    assert answer.result["requested"] is True
    assert answer.result["image"] == "system-two.erofs"
    request = (appliance.data / "os-install/request").read_text()
    assert f"sha256={hashlib.sha256(image.read_bytes()).hexdigest()}\n" in request

    done = appliance.helper()
    assert done.returncode == 0, done.stdout + done.stderr

    # the slot holds the image, byte for byte; slot B's entry has one try and sorts first
    size = image.stat().st_size
    with appliance.slot_b.open("rb") as slot:
        assert slot.read(size) == image.read_bytes()
    assert appliance.entries() == ["storefleet-a.conf", "storefleet-b+1.conf"]
    entry_b = (appliance.efi / "loader/entries/storefleet-b+1.conf").read_text()
    assert "version 2\n" in entry_b
    assert "storefleet.slot=b" in entry_b
    assert "linux /b/vmlinuz" in entry_b
    assert f"storefleet.verity={'b' * 64} storefleet.verity_hash_offset={size}" in entry_b
    assert (appliance.efi / "b/vmlinuz").read_bytes() == b"kernel " * 1000
    assert (appliance.efi / "b/os-version").read_text() == "amd64-two\n"
    assert not (appliance.data / "os-install/request").exists()
    assert appliance.rebooted.exists()  # reboot=true: into the try
    outcome = appliance.result()
    assert outcome["state"] == "installed"
    assert (outcome["slot"], outcome["version"]) == ("b", "amd64-two")

    # the agent says it once: os.update installing, with the slot it went to
    events = Events()
    reporter = OsUpdateReporter(
        boot_state=appliance.boot_state, data_dir=appliance.data, emit=events.emit
    )
    assert [(v, s) for v, s, _ in events] == [("amd64-two", "installing")]
    assert "slot b" in events[0][2]
    reporter.check()
    OsUpdateReporter(boot_state=appliance.boot_state, data_dir=appliance.data, emit=events.emit)
    assert len(events) == 1


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        pytest.param({"sha256": "0" * 64}, "sha256", "has sha256", id="sha256"),
        pytest.param({"size": 4096}, "size", "the command says 4096", id="size"),
        pytest.param({"image": "missing.erofs"}, "missing", "no OS image", id="missing"),
    ],
)
async def test_a_bad_image_is_refused_with_its_reason_and_counted(
    appliance: Appliance, change: dict[str, Any], reason: str, words: str
) -> None:
    image = appliance.data / "os-images/system.erofs"
    image.write_bytes(b"erofs " * 4000)
    image.with_name("system.erofs.verity").write_text(f"root_hash={'c' * 64}\nhash_offset=1\n")
    before = refused(reason)
    answer = await runner_for(appliance).run(
        Command(id="c-2", name=CommandName.OS_INSTALL, args=body(image, **change))
    )
    assert not answer.ok
    assert answer.error is not None
    assert words in answer.error, answer.error
    assert refused(reason) == before + 1
    assert not (appliance.data / "os-install").exists()  # nothing handed to root


@pytest.mark.parametrize(
    ("setup", "reason", "words"),
    [
        pytest.param("no_verity", "verity", "no dm-verity root hash", id="no-verity"),
        pytest.param("off_image", "no_slots", "reports no OS slots", id="off-the-image"),
        pytest.param("pending", "busy", "already under way", id="busy"),
    ],
)
async def test_an_install_that_cannot_go_ahead_is_refused(
    appliance: Appliance, setup: str, reason: str, words: str
) -> None:
    image = appliance.data / "os-images/system.erofs"
    image.write_bytes(b"erofs " * 4000)
    if setup != "no_verity":
        image.with_name("system.erofs.verity").write_text(f"root_hash={'c' * 64}\n")
    if setup == "off_image":
        appliance.boot_state.unlink()
    if setup == "pending":
        (appliance.data / "os-install").mkdir()
        (appliance.data / "os-install/request").write_text("id=earlier\n")
    before = refused(reason)
    answer = await runner_for(appliance).run(
        Command(id="c-3", name=CommandName.OS_INSTALL, args=body(image))
    )
    assert not answer.ok
    assert words in (answer.error or ""), answer.error
    assert refused(reason) == before + 1


def abandoned() -> float:
    return REGISTRY.get_sample_value("storefleet_agent_os_install_abandoned_total") or 0.0


async def test_a_request_the_root_helper_never_took_does_not_block_the_next_install(
    appliance: Appliance,
) -> None:
    image = appliance.data / "os-images/system.erofs"
    image.write_bytes(b"erofs " * 4000)
    image.with_name("system.erofs.verity").write_text(f"root_hash={'c' * 64}\n")
    stale = appliance.data / "os-install/request"
    stale.parent.mkdir()
    stale.write_text("id=earlier\n")
    long_ago = time.time() - PENDING_LIMIT_S - 60
    os.utime(stale, (long_ago, long_ago))
    before = abandoned()
    answer = await runner_for(appliance).run(
        Command(id="c-9", name=CommandName.OS_INSTALL, args=body(image))
    )
    assert answer.ok, answer.error
    assert abandoned() == before + 1
    assert "id=earlier" not in stale.read_text()  # the new request stands in its place


async def test_arguments_outside_the_contract_are_refused_before_anything_runs(
    appliance: Appliance,
) -> None:
    answer = await runner_for(appliance).run(
        Command(
            id="c-4",
            name=CommandName.OS_INSTALL,
            args={"image": "../../etc/shadow", "size": 1, "sha256": "0" * 64},
        )
    )
    assert not answer.ok
    assert "os.install: image" in (answer.error or ""), answer.error


@can_mount
async def test_a_slot_that_does_not_hold_the_sha256_is_not_armed(appliance: Appliance) -> None:
    """The helper checks what it wrote, not what the agent checked: an image changed after the
    agent's check (or a request the agent never checked) leaves no entry to boot."""
    image = appliance.image("system-two.erofs")
    answer = await runner_for(appliance).run(
        Command(id="c-5", name=CommandName.OS_INSTALL, args=body(image))
    )
    assert answer.ok, answer.error
    with image.open("r+b") as f:  # the same size, one byte changed after the check
        f.seek(image.stat().st_size - 1)
        last = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([last[0] ^ 0xFF]))

    done = appliance.helper()
    assert done.returncode == 0, done.stdout + done.stderr
    assert appliance.entries() == ["storefleet-a.conf"]  # nothing armed: A boots as before
    assert not appliance.rebooted.exists()
    outcome = appliance.result()
    assert outcome["state"] == "failed"
    assert "not armed" in outcome["detail"], outcome

    events = Events()
    OsUpdateReporter(boot_state=appliance.boot_state, data_dir=appliance.data, emit=events.emit)
    [(version, state, detail)] = events
    assert (version, state) == ("system-two.erofs", "failed")
    assert "was not installed" in detail


@pytest.mark.parametrize(
    ("request_text", "words"),
    [
        pytest.param(
            "id=x\nimage=../../etc/shadow\nsize=1\nsha256=" + "0" * 64 + "\nreboot=1\n",
            "not named by a plain file name",
            id="path",
        ),
        pytest.param(
            "id=x\nimage=system.erofs\nsize=ten\nsha256=" + "0" * 64 + "\nreboot=1\n",
            "not a number",
            id="size",
        ),
        pytest.param(
            "id=x\nimage=system.erofs\nsize=1\nsha256=$(reboot)\nreboot=1\n",
            "not 64 hex digits",
            id="sha256",
        ),
    ],
)
def test_the_helper_refuses_a_request_it_cannot_trust(
    appliance: Appliance, request_text: str, words: str
) -> None:
    (appliance.data / "os-install").mkdir()
    (appliance.data / "os-install/request").write_text(request_text)
    done = appliance.helper()
    assert done.returncode == 0, done.stderr
    outcome = appliance.result()
    assert outcome["state"] == "failed"
    assert words in outcome["detail"], outcome
    assert appliance.entries() == ["storefleet-a.conf"]
    assert not appliance.rebooted.exists()
    assert not (appliance.data / "os-install/request").exists()
