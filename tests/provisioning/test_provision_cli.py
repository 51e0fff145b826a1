"""`storefleet provision …` commands, run through typer's test runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioning.ca import CertificateAuthority
from provisioning.cli import PASSPHRASE_ENV, app
from provisioning.enrolment import new_token, parse_qr
from provisioning.fallback_code import new_fallback_code
from provisioning.keys import build_csr, generate_private_key
from tests.harness.scan import read_qr_codes

runner = CliRunner()


@pytest.fixture
def env(passphrase: bytes) -> dict[str, str]:
    return {PASSPHRASE_ENV: passphrase.decode()}


def test_init_ca_creates_a_ca_and_prints_its_fingerprint(
    tmp_path: Path, env: dict[str, str], passphrase: bytes
) -> None:
    result = runner.invoke(app, ["init-ca", str(tmp_path / "ca")], env=env)

    ca = CertificateAuthority.open(tmp_path / "ca", passphrase=passphrase)
    assert result.exit_code == 0, result.output
    assert ca.fingerprint in result.output


def test_init_ca_can_write_a_broker_directory(tmp_path: Path, env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["init-ca", str(tmp_path / "ca"), "--broker-host", "localhost"], env=env
    )

    assert result.exit_code == 0, result.output
    assert (tmp_path / "ca" / "broker" / "mosquitto.conf").exists()


def test_init_ca_refuses_a_short_passphrase(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init-ca", str(tmp_path / "ca")], env={PASSPHRASE_ENV: "short"})

    assert result.exit_code == 1
    assert "at least 16 bytes" in result.output


def test_qr_png_decodes_to_the_given_payload(tmp_path: Path, ca: CertificateAuthority) -> None:
    token = new_token()
    output = tmp_path / "enrol.png"

    result = runner.invoke(
        app,
        ["qr", str(output), "--url", "https://fleet.example.com", "--token", token,
         "--tenant", "tenant-1", "--store", "store-7", "--ca-dir", str(ca.directory)],
    )  # fmt: skip
    (text,) = read_qr_codes(output.read_bytes())
    payload = parse_qr(text)

    assert result.exit_code == 0, result.output
    assert (payload.token, payload.ca_fingerprint) == (token, ca.fingerprint)


@pytest.mark.parametrize("name", ["sheet.pdf", "sheet.png"])
def test_qr_sheet_is_written(tmp_path: Path, name: str) -> None:
    output = tmp_path / name

    result = runner.invoke(
        app,
        ["qr", str(output), "--sheet", "--url", "https://fleet.example.com",
         "--token", new_token(), "--tenant", "tenant-1", "--store", "store-7",
         "--fingerprint", "ab" * 32, "--store-name", "Corner Shop",
         "--code", new_fallback_code(), "--expires", "2026-11-22T10:00:00"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 1000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--fingerprint", "ab" * 32, "--sheet"], "needs --store-name",
                     id="sheet-without-details"),
        pytest.param([], "give --fingerprint or --ca-dir", id="no-fingerprint"),
        pytest.param(["--fingerprint", "ab" * 32, "--sheet", "--store-name", "S",
                      "--code", "S19N-AR9Z-9TMX", "--expires", "2026-11-22"],
                     "check character", id="mistyped-code"),
    ],
)  # fmt: skip
def test_qr_refusals_say_what_to_give(tmp_path: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(
        app,
        ["qr", str(tmp_path / "out.png"), "--url", "https://fleet.example.com",
         "--token", new_token(), "--tenant", "t", "--store", "s", *extra],
    )  # fmt: skip

    assert result.exit_code == 1
    assert message in result.output


def test_inspect_cert_shows_the_device_id_and_serial(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    issued = ca.issue_device_certificate(
        build_csr(generate_private_key(), common_name="x"), device_id="reg-0001"
    )
    path = tmp_path / "device.crt.pem"
    path.write_bytes(issued.chain_pem)

    result = runner.invoke(app, ["inspect-cert", str(path)])

    assert result.exit_code == 0, result.output
    assert "CN=reg-0001" in result.output
    assert format(issued.serial, "x") in result.output
    assert ca.fingerprint in result.output


def test_inspect_cert_refuses_a_file_without_certificates(tmp_path: Path) -> None:
    path = tmp_path / "nothing.pem"
    path.write_text("hello")

    result = runner.invoke(app, ["inspect-cert", str(path)])

    assert result.exit_code == 1
    assert "no readable PEM certificate" in result.output
