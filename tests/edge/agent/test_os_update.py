"""The agent reports an OS update's outcome from the boot state the image writes (issue 15).

The boot state files are written by the image's own tool (images/rootfs/.../libexec/slot
``state``), run here against a boot partition laid out as the boot loaders leave it: systemd-boot
with boot counting on the amd64 twin (an entry with no tries left is a failed update), the
Raspberry Pi's tryboot marker on the board. A revert is reported as ``reverted`` — a failure —
once, never as a success, and it stays in the ``os`` entry of the state as an error.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge.agent.os_update import (
    BootStateUnreadableError,
    OsUpdateReporter,
    parse_boot_state,
)
from protocols.release_bundle import ReleaseProgress, ReleaseState
from protocols.vocabulary import EventKind

ROOT = Path(__file__).resolve().parents[3]
SLOT_TOOL = ROOT / "images/rootfs/usr/lib/storefleet/libexec/slot"


class Board:
    """A boot partition and a kernel command line as one appliance's boot leaves them."""

    def __init__(self, directory: Path, *, uefi: bool = True) -> None:
        self.dir = directory
        self.efi = directory / ("efi" if uefi else "no-efi")
        self.firmware = directory / "firmware"
        self.state = directory / "run" / "boot-state"
        if uefi:
            (self.efi / "loader/entries").mkdir(parents=True)
        else:
            self.firmware.mkdir(parents=True)
        self.boot("a", version="2026.12.0")

    def boot(self, slot: str, *, version: str, tryboot: bool = False) -> None:
        (self.dir / "cmdline").write_text(f"root=PARTUUID=x ro storefleet.slot={slot} panic=10\n")
        (self.dir / "os-version").write_text(f"{version}\n")
        (self.dir / "tryboot").write_bytes((1 if tryboot else 0).to_bytes(4, "big"))

    def entries(self, *names: str) -> None:
        """The loader entries systemd-boot left (storefleet-a.conf, storefleet-b+0-1.conf …)."""
        entries = self.efi / "loader/entries"
        for old in entries.iterdir():
            old.unlink()
        for name in names:
            (entries / name).write_text("title storefleet\n")

    def installed(self, slot: str, version: str, attempt: str) -> None:
        """What ``slot install`` leaves beside the slot's kernel on the ESP."""
        (self.efi / slot).mkdir(exist_ok=True)
        (self.efi / slot / "os-version").write_text(f"{version}\n")
        (self.efi / slot / "os-attempt").write_text(f"{attempt}\n")

    def write_state(self) -> str:
        """Run the image's ``slot state`` (what storefleet-os-state.service does)."""
        env = {
            "PATH": os.environ["PATH"],
            "STOREFLEET_CMDLINE": str(self.dir / "cmdline"),
            "STOREFLEET_EFI": str(self.efi),
            "STOREFLEET_FIRMWARE": str(self.firmware),
            "STOREFLEET_TRYBOOT_FLAG": str(self.dir / "tryboot"),
            "STOREFLEET_OS_VERSION": str(self.dir / "os-version"),
            "STOREFLEET_OS_STATE": str(self.state),
        }
        done = subprocess.run(
            ["sh", str(SLOT_TOOL), "state"], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout


class Events(list[tuple[str, dict[str, Any]]]):
    def emit(self, kind: str, body: dict[str, Any]) -> None:
        self.append((kind, body))

    def states(self) -> list[tuple[str, str]]:
        out = []
        for kind, body in self:
            assert kind == EventKind.OS_UPDATE
            progress = ReleaseProgress.model_validate(body)  # what the cloud parses
            assert progress.rollout is None
            out.append((progress.version, progress.state.value))
        return out


def reporter(board: Board, data: Path, events: Events) -> OsUpdateReporter:
    return OsUpdateReporter(boot_state=board.state, data_dir=data, emit=events.emit)


def test_a_reverted_update_is_a_failure_reported_once(tmp_path: Path) -> None:
    board = Board(tmp_path / "board")
    board.installed("b", "2026.12.1", "2026.12.1@1765000000")
    board.entries("storefleet-a.conf", "storefleet-b+0-1.conf")  # B's one try used, failed
    board.write_state()
    events = Events()
    agent = reporter(board, tmp_path / "data", events)

    assert events.states() == [("2026.12.1", "reverted")]
    assert ReleaseState.SUCCEEDED.value not in {state for _, state in events.states()}
    health = agent.health()
    assert health is not None
    assert health["detail"] == {
        "slot": "a",
        "version": "2026.12.0",
        "boot": "committed",
        "update": "reverted",
        "update_slot": "b",
        "update_version": "2026.12.1",
    }
    assert "OS update 2026.12.1 reverted" in health["error"]
    assert "running slot a (2026.12.0)" in health["error"]

    # the agent restarts, the machine boots again: the entry is still there, no second report,
    # and the state still shows the failure
    board.write_state()
    again = Events()
    assert reporter(board, tmp_path / "data", again).health() == health
    assert again == []


def test_an_update_is_confirming_on_its_try_then_succeeded_once_committed(
    tmp_path: Path,
) -> None:
    board = Board(tmp_path / "board")
    board.installed("b", "2026.12.1", "2026.12.1@1765000001")
    board.boot("b", version="2026.12.1")
    board.entries("storefleet-a.conf", "storefleet-b+0-1.conf")  # B booted on its one try
    board.write_state()
    events = Events()
    agent = reporter(board, tmp_path / "data", events)
    assert events.states() == [("2026.12.1", "confirming")]
    health = agent.health()
    assert health is not None
    assert health["error"] is None
    assert health["detail"]["update"] == "confirming"

    board.entries("storefleet-a.conf", "storefleet-b.conf")  # systemd-bless-boot renamed it
    board.write_state()
    agent.check()
    assert events.states() == [("2026.12.1", "confirming"), ("2026.12.1", "succeeded")]
    health = agent.health()
    assert health is not None
    assert health["error"] is None
    assert (
        health["detail"].items()
        >= {"slot": "b", "boot": "committed", "update": "succeeded"}.items()
    )
    agent.check()  # the file did not change: nothing new
    board.write_state()
    agent.check()  # rewritten, same facts: nothing new either
    assert len(events) == 2


def test_a_second_try_of_the_same_version_is_a_new_report(tmp_path: Path) -> None:
    board = Board(tmp_path / "board")
    board.entries("storefleet-a.conf", "storefleet-b+0-1.conf")
    board.installed("b", "2026.12.1", "2026.12.1@1")
    board.write_state()
    events = Events()
    reporter(board, tmp_path / "data", events)
    board.installed("b", "2026.12.1", "2026.12.1@2")  # installed again, failed again
    board.write_state()
    reporter(board, tmp_path / "data", events)
    assert events.states() == [("2026.12.1", "reverted"), ("2026.12.1", "reverted")]
    kept = json.loads((tmp_path / "data" / "os-update.json").read_text())
    assert kept["reported"] == {"2026.12.1@1": "reverted", "2026.12.1@2": "reverted"}


def test_an_installed_update_not_tried_yet_is_no_outcome(tmp_path: Path) -> None:
    board = Board(tmp_path / "board")
    board.installed("b", "2026.12.1", "2026.12.1@3")
    board.entries("storefleet-a.conf", "storefleet-b+1.conf")  # waits for the next boot
    board.write_state()
    events = Events()
    health = reporter(board, tmp_path / "data", events).health()
    assert events == []
    assert health is not None
    assert health["error"] is None
    assert health["detail"]["update"] == ""


def test_tryboot_on_the_board_a_failed_try_is_reverted(tmp_path: Path) -> None:
    board = Board(tmp_path / "board", uefi=False)
    marker = "slot=b\nversion=2026.12.1\nattempt=2026.12.1@7\n"
    (board.firmware / "storefleet-try").write_text(marker)
    board.boot("b", version="2026.12.1", tryboot=True)  # reboot '0 tryboot'
    board.write_state()
    events = Events()
    reporter(board, tmp_path / "data", events)
    assert events.states() == [("2026.12.1", "confirming")]
    board.boot("a", version="2026.12.0", tryboot=False)  # reset before mark-good: old slot
    board.write_state()
    reporter(board, tmp_path / "data", events)
    assert events.states() == [("2026.12.1", "confirming"), ("2026.12.1", "reverted")]


def test_off_the_image_nothing_is_reported(tmp_path: Path) -> None:
    events = Events()
    agent = OsUpdateReporter(
        boot_state=tmp_path / "absent", data_dir=tmp_path / "data", emit=events.emit
    )
    assert agent.health() is None
    assert events == []


def test_a_boot_state_the_agent_cannot_read_is_counted_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(BootStateUnreadableError, match="slot="):
        parse_boot_state("version=1\nboot=committed\n")
    with pytest.raises(BootStateUnreadableError, match="boot="):
        parse_boot_state("slot=a\nboot=maybe\n")
    broken = tmp_path / "boot-state"
    broken.write_text("slot=c\n")
    events = Events()
    agent = OsUpdateReporter(boot_state=broken, data_dir=tmp_path / "data", emit=events.emit)
    assert agent.health() is None
    assert events == []
    assert "storefleet-os-state.service" in caplog.text
