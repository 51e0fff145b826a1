"""The Mosquitto mTLS config rendered from images/mosquitto, and the access list it starts with."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from provisioning.broker_config import (
    TEMPLATE_PATH,
    BrokerFiles,
    dynamic_security_plugin,
    render_mosquitto_config,
    write_broker_directory,
)
from provisioning.ca import CertificateAuthority
from provisioning.dynamic_security import initial_document
from provisioning.errors import BrokerConfigError


def _files(directory: Path) -> BrokerFiles:
    return BrokerFiles(
        config=directory / "mosquitto.conf",
        dynamic_security=directory / "dynamic-security.json",
        cafile=directory / "ca.pem",
        certfile=directory / "broker.pem",
        keyfile=directory / "broker.key",
        crlfile=directory / "crl.pem",
    )


def _lines(config: str) -> set[str]:
    return {line for line in config.splitlines() if line and not line.startswith("#")}


PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


def test_listener_requires_client_certificates_and_maps_cn_to_user(tmp_path: Path) -> None:
    lines = _lines(
        render_mosquitto_config(
            TEMPLATE_PATH.read_text(), files=_files(tmp_path), dynsec_plugin=PLUGIN
        )
    )

    assert {
        "listener 8883 0.0.0.0",
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
        f"cafile {tmp_path / 'ca.pem'}",
        f"certfile {tmp_path / 'broker.pem'}",
        f"keyfile {tmp_path / 'broker.key'}",
        f"crlfile {tmp_path / 'crl.pem'}",
        f"plugin {PLUGIN}",
        f"plugin_opt_config_file {tmp_path / 'dynamic-security.json'}",
        "persistence false",
        "set_tcp_nodelay true",  # else Nagle adds ~40 ms to every ack and access-list answer
    } <= lines
    assert not any(line.startswith("acl_file") for line in lines)  # it never checks SUBSCRIBE
    assert "use_username_as_clientid true" in lines  # as shipped: see test_client_id_binding.py


def test_binding_the_client_id_to_the_certificate_is_one_line(tmp_path: Path) -> None:
    lines = _lines(
        render_mosquitto_config(
            TEMPLATE_PATH.read_text(), files=_files(tmp_path), bind_client_id=False
        )
    )

    assert "use_username_as_clientid true" not in lines


def test_the_service_listener_requires_certificates_but_leaves_client_ids_unbound(
    tmp_path: Path,
) -> None:
    """The control plane's sessions all present CN control-plane: bound, they would collide."""
    config = render_mosquitto_config(
        TEMPLATE_PATH.read_text(), files=_files(tmp_path), dynsec_plugin=PLUGIN, service_port=8884
    )
    devices, _, services = config.partition("listener 8884 127.0.0.1")

    assert "use_username_as_clientid true" in _lines(devices)
    assert {
        "require_certificate true",
        "use_identity_as_username true",
        f"cafile {tmp_path / 'ca.pem'}",
        f"crlfile {tmp_path / 'crl.pem'}",
    } <= _lines(services)
    assert "use_username_as_clientid true" not in _lines(services)


def test_the_service_listener_needs_a_port_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(BrokerConfigError, match="service port"):
        render_mosquitto_config(
            TEMPLATE_PATH.read_text(), files=_files(tmp_path), service_port=8883
        )


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


def test_the_plugin_is_found_where_debian_installs_it() -> None:
    found = dynamic_security_plugin()

    assert found.name == "mosquitto_dynamic_security.so"
    assert found.exists()  # the test machine has Debian's mosquitto 2.0


def test_broker_directory_holds_everything_the_config_names(
    tmp_path: Path, ca: CertificateAuthority, now: datetime
) -> None:
    files = write_broker_directory(
        tmp_path / "broker", ca=ca, hostnames=["localhost"], port=18883, now=now
    )
    config = files.config.read_text()

    files_named = (files.dynamic_security, files.cafile, files.certfile, files.keyfile)
    for path in (*files_named, files.crlfile):
        assert path.is_absolute()
        assert path.exists()
        assert str(path) in config
    assert files.keyfile.stat().st_mode & 0o777 == 0o600
    assert files.cafile.read_bytes() == ca.trust_bundle_pem
    assert json.loads(files.dynamic_security.read_text()) == initial_document()


def test_the_access_list_is_the_brokers_once_written(
    tmp_path: Path, ca: CertificateAuthority, now: datetime
) -> None:
    first = write_broker_directory(tmp_path / "broker", ca=ca, hostnames=["localhost"], now=now)
    first.dynamic_security.write_text('{"clients": [{"username": "reg-1"}]}')  # the broker's

    again = write_broker_directory(tmp_path / "broker", ca=ca, hostnames=["localhost"], now=now)

    assert again.dynamic_security.read_text() == '{"clients": [{"username": "reg-1"}]}'


def test_with_a_data_directory_the_access_list_persists_there(
    tmp_path: Path, ca: CertificateAuthority, now: datetime
) -> None:
    files = write_broker_directory(
        tmp_path / "broker",
        ca=ca,
        hostnames=["localhost"],
        data_directory=tmp_path / "data",
        now=now,
    )

    assert files.dynamic_security == (tmp_path / "data" / "dynamic-security.json").resolve()
    assert files.dynamic_security.exists()
