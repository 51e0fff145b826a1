"""Crash-safe files for keys and certificates."""

from __future__ import annotations

from pathlib import Path

from provisioning.keys import create_exclusive, write_atomic


def test_write_atomic_replaces_content_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "cert.pem"
    write_atomic(path, b"old", mode=0o644)

    write_atomic(path, b"new", mode=0o600)

    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["cert.pem"]


def test_create_exclusive_keeps_the_first_writer(tmp_path: Path) -> None:
    path = tmp_path / "device.key.pem"

    first = create_exclusive(path, b"first key", mode=0o600)
    second = create_exclusive(path, b"second key", mode=0o600)

    assert (first, second) == (True, False)
    assert path.read_bytes() == b"first key"
    assert [p.name for p in tmp_path.iterdir()] == ["device.key.pem"]
