"""Root's side of support's SSH (images/rootfs/usr/lib/storefleet/libexec/support-access), run
here as the image runs it, on files in tmp_path: the real ``ssh-keygen`` checks each key line
and makes the host key. Only ``systemctl`` is a stand-in that writes what it was asked (there
is no systemd to start sshd on this machine; the image's fleet test starts the real one)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "images/rootfs/usr/lib/storefleet/libexec/support-access"

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")


def public_line(comment: str = "support@desk") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{raw.decode()} {comment}"


class Box:
    """The helper's files on one appliance, in tmp_path."""

    def __init__(self, base: Path) -> None:
        self.keys = base / "var/lib/storefleet/support/authorized_keys"
        self.copy = base / "run/storefleet-support/authorized_keys"
        self.host_key = base / "data/support/ssh_host_ed25519_key"
        self.asked = base / "systemctl.log"
        self.systemctl = base / "systemctl"
        self.systemctl.write_text(f'#!/bin/sh\necho "$*" >> {self.asked}\n')
        self.systemctl.chmod(0o755)
        self.keys.parent.mkdir(parents=True)

    def run(self) -> str:
        env = {
            **os.environ,
            "STOREFLEET_SUPPORT_KEYS": str(self.keys),
            "STOREFLEET_SUPPORT_COPY": str(self.copy),
            "STOREFLEET_SUPPORT_HOST_KEY": str(self.host_key),
            "STOREFLEET_SYSTEMCTL": str(self.systemctl),
        }
        done = subprocess.run(
            [str(HELPER)], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout

    def systemctl_asked(self) -> list[str]:
        return self.asked.read_text().splitlines() if self.asked.exists() else []


def test_keys_turn_sshd_on_with_roots_copy_and_a_host_key_of_the_boxs_own(tmp_path: Path) -> None:
    box = Box(tmp_path)
    lines = [public_line("alice@support"), public_line("bob@support")]
    box.keys.write_text("\n".join(lines) + "\n")
    said = box.run()
    assert box.systemctl_asked() == ["start ssh.service"]
    assert box.copy.read_text().splitlines() == lines
    assert stat.S_IMODE(box.copy.stat().st_mode) == 0o644  # sshd's StrictModes takes it
    assert stat.S_IMODE(box.host_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(box.host_key.parent.stat().st_mode) == 0o700
    assert "SSH on for user support with 2 key(s)" in said
    host_key = box.host_key.read_bytes()
    box.run()  # again (the next boot): the same host key, not a new one
    assert box.host_key.read_bytes() == host_key


def test_no_key_turns_sshd_off_and_removes_roots_copy(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.keys.write_text(public_line() + "\n")
    box.run()
    box.keys.write_text("")  # the configuration turned SSH off
    said = box.run()
    assert box.systemctl_asked() == ["start ssh.service", "stop ssh.service"]
    assert not box.copy.exists()
    assert "SSH off" in said


def test_a_box_never_given_keys_stays_off(tmp_path: Path) -> None:
    box = Box(tmp_path)  # the agent never wrote the file
    said = box.run()
    assert box.systemctl_asked() == ["stop ssh.service"]
    assert not box.host_key.exists()  # no host key is made for nothing
    assert "SSH off" in said


def test_a_line_that_is_not_a_plain_public_key_is_left_out(tmp_path: Path) -> None:
    """The file is the unprivileged agent's: key options (a forced command, another user's
    shell), a private key or garbage never reach sshd, even if the agent wrote them."""
    box = Box(tmp_path)
    good = public_line()
    box.keys.write_text(
        "\n".join(
            [
                'command="/bin/sh" ' + public_line(),
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "ssh-ed25519 AAAAnot-a-key",
                good,
            ]
        )
        + "\n"
    )
    said = box.run()
    assert box.copy.read_text() == good + "\n"
    assert "3 key line(s) refused" in said
    assert box.systemctl_asked() == ["start ssh.service"]


def test_only_refused_lines_mean_off(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.keys.write_text("ssh-ed25519 AAAAnot-a-key\n")
    said = box.run()
    assert box.systemctl_asked() == ["stop ssh.service"]
    assert not box.copy.exists()
    assert "1 key line(s) refused" in said


def test_a_linked_keys_file_is_not_followed(tmp_path: Path) -> None:
    box = Box(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(public_line() + "\n")
    box.keys.symlink_to(elsewhere)
    box.run()
    assert box.systemctl_asked() == ["stop ssh.service"]
