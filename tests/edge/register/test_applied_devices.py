"""The register's devices from the store configuration: named ones replace the settings', the rest
stay; devices the drivers cannot take leave the settings' in place and say so."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from edge.agent.configuration.files import AppliedConfig, write_applied
from edge.register.applied_devices import register_devices
from edge.register.settings import RegisterSettings
from protocols.store_config import parse_store_config
from tests.harness.store_config import store_config_doc

SETTINGS_PRINTER = {"connector": "file", "file_path": "/tmp/receipts.bin"}


def settings_at(tmp_path: Path, **peripherals: Any) -> RegisterSettings:
    return RegisterSettings(device_id="reg-devices", data_dir=tmp_path, peripherals=peripherals)


def apply(tmp_path: Path, **sections: Any) -> None:
    doc = parse_store_config(store_config_doc(**sections))
    write_applied(tmp_path, AppliedConfig.of(2, doc))


def test_a_configured_printer_replaces_the_settings_one(tmp_path: Path) -> None:
    apply(
        tmp_path,
        printer={"connector": "network", "host": "10.0.0.40", "paper_width_mm": 58},
    )
    devices = register_devices(settings_at(tmp_path, printer=SETTINGS_PRINTER))
    assert devices.printer is not None
    assert (devices.printer.connector, devices.printer.host) == ("network", "10.0.0.40")
    assert devices.printer.paper.columns == 32  # 58 mm paper


def test_what_the_configuration_leaves_out_stays_as_set(tmp_path: Path) -> None:
    apply(tmp_path, scanners={"serial": [{"name": "hand", "device": "/dev/ttyACM0"}]})
    devices = register_devices(settings_at(tmp_path, printer=SETTINGS_PRINTER))
    assert devices.printer is not None
    assert devices.printer.connector == "file"
    assert [(s.name, s.port) for s in devices.serial_scanners] == [("hand", "/dev/ttyACM0")]


def test_rfid_readers_from_the_configuration(tmp_path: Path) -> None:
    apply(
        tmp_path,
        rfid=[
            {"name": "door", "kind": "llrp", "host": "10.0.0.50", "antennas": [1, 2]},
            {"name": "counter", "kind": "serial", "device": "/dev/ttyUSB0"},
        ],
    )
    devices = register_devices(settings_at(tmp_path))
    assert [(r.name, r.kind, r.host, r.serial_port, r.antennas) for r in devices.rfid] == [
        ("door", "llrp", "10.0.0.50", "", (1, 2)),
        ("counter", "serial", "", "/dev/ttyUSB0", ()),
    ]


def test_devices_the_drivers_refuse_leave_the_settings_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    apply(tmp_path, printer={"connector": "network", "host": "10.0.0.40", "profile": "TM-NOPE"})
    with caplog.at_level(logging.ERROR):
        devices = register_devices(settings_at(tmp_path, printer=SETTINGS_PRINTER))
    assert devices.printer is not None
    assert devices.printer.connector == "file"
    assert "TM-NOPE" in caplog.text
    assert "fix the device keys in the control plane" in caplog.text


def test_without_a_configuration_the_settings_devices(tmp_path: Path) -> None:
    settings = settings_at(tmp_path, printer=SETTINGS_PRINTER)
    assert register_devices(settings) is settings.peripherals
