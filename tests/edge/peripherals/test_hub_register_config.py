"""The register's device config: TOML, JSON, environment, and errors that say what to set."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from edge.ledger import Ledger
from edge.peripherals.register_config import (
    ENV_FILE,
    ENV_JSON,
    ENV_PRESET,
    RegisterConfigError,
    RegisterDevices,
    load_register_devices,
    parse_register_devices,
    read_register_devices,
)
from edge.peripherals.register_peripherals import open_register_peripherals

from .waiting import until

STORE_TOML = """
[printer]
connector = "network"
host = "192.168.1.40"
paper = { profile = "TM-T20II", columns = 32 }

[drawer]
pin = 5

[hid_scanners]
name_contains = ["Honeywell"]
layout = "de"

[[serial_scanners]]
name = "hand-scanner"
port = "/dev/ttyACM0"

[[rfid]]
name = "door"
kind = "llrp"
host = "192.168.1.50"
antennas = [1, 2]

[[rfid]]
name = "counter"
kind = "serial"
serial_port = "/dev/ttyUSB0"
"""


def test_a_store_file_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(STORE_TOML)
    devices = read_register_devices(path)
    assert devices.printer is not None
    assert (devices.printer.host, devices.printer.paper.columns) == ("192.168.1.40", 32)
    assert devices.drawer is not None
    assert devices.drawer.pin == 5
    assert devices.hid_scanners is not None
    assert devices.hid_scanners.layout == "de"
    door, counter = devices.rfid
    assert door.llrp_settings().antennas == (1, 2)
    assert counter.serial_settings().port == "/dev/ttyUSB0"
    assert counter.serial_settings().antennas == (1,)
    assert not devices.simulated


def test_environment_file_json_and_preset(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    path.write_text(json.dumps({"printer": {"connector": "file", "file_path": "/dev/usb/lp0"}}))
    from_file = load_register_devices({ENV_FILE: str(path)})
    assert from_file.printer is not None
    assert from_file.printer.connector == "file"
    inline = load_register_devices(
        {ENV_JSON: '{"rfid": [{"name": "r", "kind": "llrp", "host": "h"}]}'}
    )
    assert [r.name for r in inline.rfid] == ["r"]
    assert load_register_devices({}) == RegisterDevices()
    assert load_register_devices({ENV_PRESET: "simulated"}).simulated


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(
            {"printer": {"connector": "network"}},
            "printer: printer connector 'network' needs host to be set",
            id="printer-without-host",
        ),
        pytest.param(
            {"drawer": {}},
            "drawer is kicked through the printer: set [printer] or drop [drawer]",
            id="drawer-without-printer",
        ),
        pytest.param(
            {"rfid": [{"name": "door", "kind": "llrp"}]},
            "rfid.0: llrp reader 'door' needs host (and port, default 5084)",
            id="llrp-without-host",
        ),
        pytest.param(
            {"rfid": [{"name": "c", "kind": "serial"}]},
            "rfid.0: serial reader 'c' needs serial_port, e.g. /dev/ttyUSB0",
            id="serial-reader-without-port",
        ),
        pytest.param(
            {"serial_scanners": [{"port": "/dev/ttyACM0"}]},
            "serial_scanners.0.name: Field required",
            id="scanner-without-name",
        ),
        pytest.param(
            {
                "printer": {"connector": "network", "host": "p"},
                "rfid": [{"name": "receipt-printer", "kind": "llrp", "host": "h"}],
            },
            "device names must be unique; rename receipt-printer",
            id="duplicate-names",
        ),
        pytest.param(
            {"printr": {}},
            "printr: Extra inputs are not permitted",
            id="typo",
        ),
    ],
)
def test_errors_name_what_to_set(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(RegisterConfigError) as caught:
        parse_register_devices(raw, source="devices.toml")
    assert caught.value.problems == [problem]
    assert str(caught.value).startswith("peripherals config (devices.toml): ")


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        pytest.param({ENV_PRESET: "real"}, "must be 'simulated' or unset", id="bad-preset"),
        pytest.param({ENV_JSON: "{nope"}, "is not JSON", id="bad-json"),
        pytest.param({ENV_FILE: "/nonexistent/devices.toml"}, "cannot read", id="no-file"),
    ],
)
def test_environment_errors(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(RegisterConfigError, match=problem):
        load_register_devices(environ)


async def test_simulated_preset_runs_the_real_drivers_on_simulators(tmp_path: Path) -> None:
    devices = load_register_devices({ENV_PRESET: "simulated"})
    async with (
        asyncio.timeout(30),
        Ledger(tmp_path / "ledger.db", register_id="1") as ledger,
        open_register_peripherals(devices, journal=ledger, data_dir=tmp_path) as hub,
    ):
        await until(lambda: hub.health().get("door-reader", {}).get("connected") is True)
        opened = await hub.open_drawer(reason="demo", by="E01")
        await hub.require_printer().wait_for(opened.job_id, lambda j: j.state == "printed")
    assert hub.devices.printer is not None
    assert hub.devices.printer.host == "127.0.0.1"
