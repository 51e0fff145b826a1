"""The Mosquitto mTLS config rendered from images/mosquitto, and the ACL shipped with it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from provisioning.broker_config import (
    ACL_PATH,
    TEMPLATE_PATH,
    BrokerFiles,
    render_mosquitto_config,
    write_broker_directory,
)
from provisioning.ca import CertificateAuthority
from provisioning.errors import BrokerConfigError


def _files(directory: Path) -> BrokerFiles:
    return BrokerFiles(
        config=directory / "mosquitto.conf",
        acl=directory / "acl",
        cafile=directory / "ca.pem",
        certfile=directory / "broker.pem",
        keyfile=directory / "broker.key",
        crlfile=directory / "crl.pem",
    )


def _lines(config: str) -> set[str]:
    return {line for line in config.splitlines() if line and not line.startswith("#")}


def test_listener_requires_client_certificates_and_maps_cn_to_user(tmp_path: Path) -> None:
    lines = _lines(render_mosquitto_config(TEMPLATE_PATH.read_text(), files=_files(tmp_path)))

    assert {
        "listener 8883 0.0.0.0",
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
        f"cafile {tmp_path / 'ca.pem'}",
        f"certfile {tmp_path / 'broker.pem'}",
        f"keyfile {tmp_path / 'broker.key'}",
        f"crlfile {tmp_path / 'crl.pem'}",
        f"acl_file {tmp_path / 'acl'}",
        "persistence false",
    } <= lines


def test_persistence_and_user_are_optional_lines(tmp_path: Path) -> None:
    lines = _lines(
        render_mosquitto_config(
            TEMPLATE_PATH.read_text(),
            files=_files(tmp_path),
            data_directory=tmp_path / "data",
            run_as_user="mosquitto",
        )
    )

    assert {"persistence true", f"persistence_location {tmp_path}/data/", "user mosquitto"} <= lines


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"bind_address": "0.0.0.0\nallow_anonymous true"}, "no whitespace",
                     id="newline-injection"),
        pytest.param({"run_as_user": "root root"}, "no whitespace", id="space-in-user"),
        pytest.param({"port": 0}, "not a TCP port", id="port-zero"),
    ],
)  # fmt: skip
def test_unsafe_values_are_refused(
    tmp_path: Path, changes: dict[str, str | int], message: str
) -> None:
    with pytest.raises(BrokerConfigError, match=message):
        render_mosquitto_config(
            TEMPLATE_PATH.read_text(),
            files=_files(tmp_path),
            **changes,  # type: ignore[arg-type]
        )


def test_unknown_placeholder_in_a_template_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerConfigError, match="placeholder"):
        render_mosquitto_config("max_connections ${limit}\n", files=_files(tmp_path))


def test_acl_binds_devices_to_their_subtree_and_grants_the_control_plane_the_fleet() -> None:
    lines = _lines(ACL_PATH.read_text())

    assert lines == {
        "pattern readwrite sf/v1/d/%u/#",
        "user control-plane",
        "topic readwrite sf/v1/#",
    }


def test_broker_directory_holds_everything_the_config_names(
    tmp_path: Path, ca: CertificateAuthority, now: datetime
) -> None:
    files = write_broker_directory(
        tmp_path / "broker", ca=ca, hostnames=["localhost"], port=18883, now=now
    )
    config = files.config.read_text()

    for path in (files.acl, files.cafile, files.certfile, files.keyfile, files.crlfile):
        assert path.is_absolute()
        assert path.exists()
        assert str(path) in config
    assert files.keyfile.stat().st_mode & 0o777 == 0o600
    assert files.cafile.read_bytes() == ca.trust_bundle_pem
