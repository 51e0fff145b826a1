"""``storefleet release keygen|build|verify``: a key agents can trust, a bundle they accept."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from protocols import release_bundle as rb
from storefleet.cli import app

runner = CliRunner()


def _keygen(path: Path) -> tuple[str, str]:
    result = runner.invoke(app, ["release", "keygen", "--out", str(path)])
    assert result.exit_code == 0, result.output
    public = re.search(r"public key: (\S+)", result.output)
    key_id = re.search(r"key_id: (\S+)", result.output)
    assert public is not None
    assert key_id is not None
    return public[1], key_id[1]


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / "storefleet-1.2.3-py3-none-any.whl"
    path.write_bytes(b"PK\x03\x04 not really a zip, the bundle only digests it" * 100)
    return path


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_what_agents_trust(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "keys" / "release.pem"

    public, key_id = _keygen(key_file)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = rb.load_private_key(key_file.read_bytes())
    assert rb.public_key_text(private.public_key()) == public
    assert rb.key_id(rb.load_public_key(public)) == key_id


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "release.pem"
    _keygen(key_file)
    before = key_file.read_bytes()

    result = runner.invoke(app, ["release", "keygen", "--out", str(key_file)])

    assert result.exit_code == 1
    assert "exists" in result.output
    assert key_file.read_bytes() == before


def test_build_then_verify_names_the_version_and_signer(tmp_path: Path, wheel: Path) -> None:
    key_file = tmp_path / "release.pem"
    public, key_id = _keygen(key_file)
    out = tmp_path / "dist"

    built = runner.invoke(
        app,
        ["release", "build", "--key", str(key_file), "--wheel", str(wheel), "--out", str(out)],
    )
    assert built.exit_code == 0, built.output
    bundle = out / "storefleet-app-1.2.3.sfb"
    assert f"sha256: {rb_sha(bundle)}" in built.output

    verified = runner.invoke(app, ["release", "verify", str(bundle), "--public-key", public])

    assert verified.exit_code == 0, verified.output
    assert f"version 1.2.3, signed by {key_id}" in verified.output
    assert not list(out.glob(".building-*"))


def test_verify_with_another_key_refuses_naming_the_reason(tmp_path: Path, wheel: Path) -> None:
    signer = tmp_path / "signer.pem"
    other = tmp_path / "other.pem"
    _keygen(signer)
    other_public, _ = _keygen(other)
    out = tmp_path / "dist"
    runner.invoke(
        app, ["release", "build", "--key", str(signer), "--wheel", str(wheel), "--out", str(out)]
    )

    result = runner.invoke(
        app,
        ["release", "verify", str(out / "storefleet-app-1.2.3.sfb"), "--public-key", other_public],
    )

    assert result.exit_code == 1
    assert "REFUSED unknown_key" in result.output


def test_build_refuses_a_key_others_can_read(tmp_path: Path, wheel: Path) -> None:
    key_file = tmp_path / "release.pem"
    _keygen(key_file)
    key_file.chmod(0o644)

    result = runner.invoke(
        app,
        ["release", "build", "--key", str(key_file), "--wheel", str(wheel), "--out", str(tmp_path)],
    )

    assert result.exit_code == 1
    assert "chmod 600" in result.output
    assert not list(tmp_path.glob("*.sfb"))


def rb_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
