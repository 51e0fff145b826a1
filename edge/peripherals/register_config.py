"""Which devices a register has: printer and drawer, scanners, RFID readers (one validated file).

Why one document: a field tech installs a register by writing one file (TOML or JSON), and a
mistake must stop the appliance at start with a message that names what to set, not surface
as a receipt that never prints. The file comes from ``STOREFLEET_PERIPHERALS_FILE``, or inline
JSON from ``STOREFLEET_PERIPHERALS_JSON``; ``STOREFLEET_PERIPHERALS_PRESET=simulated`` (or
``preset = "simulated"`` in the file) runs the demo's simulators on loopback and ptys and points
the real drivers at them (see :mod:`edge.peripherals.simulated_store`). Nothing configured is a
valid register too: it sells with the on-screen receipt.

Example (TOML)::

    [printer]
    connector = "network"
    host = "192.168.1.40"
    paper = { profile = "TM-T88V", columns = 42 }

    [drawer]
    pin = 2

    [hid_scanners]
    name_contains = ["Honeywell"]

    [[serial_scanners]]
    name = "hand-scanner"
    port = "/dev/ttyACM0"

    [[rfid]]
    name = "door"
    kind = "llrp"
    host = "192.168.1.50"
    antennas = [1, 2]
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.peripherals.printer.settings import PrinterSettings
from edge.peripherals.rfid.llrp_client import LlrpSettings
from edge.peripherals.rfid.serial_client import SerialReaderSettings
from edge.peripherals.scanner.settings import SerialScannerSettings, WedgeSettings

ENV_FILE = "STOREFLEET_PERIPHERALS_FILE"
ENV_JSON = "STOREFLEET_PERIPHERALS_JSON"
ENV_PRESET = "STOREFLEET_PERIPHERALS_PRESET"

DeviceName = str  # how the device is called in health, logs and the console


class RegisterConfigError(ValueError):
    """The peripherals config cannot be used; ``problems`` lists what to set, one per line."""

    def __init__(self, problems: list[str], *, source: str) -> None:
        super().__init__(f"peripherals config ({source}): " + "; ".join(problems))
        self.problems = problems
        self.source = source


class PrinterConfig(PrinterSettings):
    """The receipt printer: a python-escpos connector and the paper layout."""

    name: DeviceName = "receipt-printer"
    retry_base_s: float = Field(default=1.0, gt=0)  # a failed job retries after ~this, doubling
    retry_cap_s: float = Field(default=60.0, gt=0)  # … up to this: paper back = printed soon
    status_poll_s: float = Field(default=30.0, gt=0)  # ask the idle printer how it is

    @property
    def backoff_initial(self) -> float:
        """The first retry's ceiling, as :meth:`mqttlink.backoff.Backoff.from_settings` reads it."""
        return self.retry_base_s

    @property
    def backoff_max(self) -> float:
        """The cap of every retry, as :meth:`mqttlink.backoff.Backoff.from_settings` reads it."""
        return self.retry_cap_s


class DrawerConfig(BaseModel):
    """The cash drawer wired to the printer's DK port (it has no cable of its own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DeviceName = "cash-drawer"
    pin: Literal[2, 5] = 2


class SerialScannerConfig(SerialScannerSettings):
    """A scanner on a serial or USB-CDC port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DeviceName


class RfidReaderConfig(BaseModel):
    """An RFID reader: fixed LLRP reader on the network, or a serial R2000 module."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DeviceName
    kind: Literal["llrp", "serial"]
    host: str = ""
    port: int = Field(default=5084, ge=1, le=65535)
    serial_port: str = ""
    baudrate: int = 115200
    antennas: tuple[int, ...] = ()  # empty: every antenna (LLRP 0) / antenna 1 (serial)
    keepalive_ms: int = Field(default=5000, ge=100)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _kind_has_its_address(self) -> RfidReaderConfig:
        if self.kind == "llrp" and not self.host:
            raise ValueError(f"llrp reader {self.name!r} needs host (and port, default 5084)")
        if self.kind == "serial" and not self.serial_port:
            raise ValueError(f"serial reader {self.name!r} needs serial_port, e.g. /dev/ttyUSB0")
        if any(a < 0 for a in self.antennas):
            raise ValueError(f"reader {self.name!r}: antennas are numbered from 1")
        return self

    def llrp_settings(self) -> LlrpSettings:
        """Settings of the LLRP client."""
        return LlrpSettings(
            host=self.host,
            port=self.port,
            antennas=self.antennas or (0,),
            keepalive_ms=self.keepalive_ms,
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
        )

    def serial_settings(self) -> SerialReaderSettings:
        """Settings of the serial UHF client."""
        return SerialReaderSettings(
            port=self.serial_port,
            baudrate=self.baudrate,
            antennas=self.antennas or (1,),
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
        )


class RegisterDevices(BaseModel):
    """Every device of one register; the hub starts one service per entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: Literal["none", "simulated"] = "none"
    printer: PrinterConfig | None = None
    drawer: DrawerConfig | None = None
    hid_scanners: WedgeSettings | None = None
    serial_scanners: tuple[SerialScannerConfig, ...] = ()
    rfid: tuple[RfidReaderConfig, ...] = ()
    print_queue: Path | None = None  # None: print-queue.db in the hub's data directory

    @model_validator(mode="after")
    def _consistent(self) -> RegisterDevices:
        if self.drawer is not None and self.printer is None:
            raise ValueError("drawer is kicked through the printer: set [printer] or drop [drawer]")
        names = [d.name for d in (self.printer, self.drawer) if d is not None]
        names += [s.name for s in self.serial_scanners] + [r.name for r in self.rfid]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"device names must be unique; rename {', '.join(twice)}")
        return self

    @property
    def simulated(self) -> bool:
        """True when the simulators stand in for the hardware."""
        return self.preset == "simulated"


def parse_register_devices(raw: Mapping[str, Any], *, source: str) -> RegisterDevices:
    """Validate a parsed document; errors name the field to set."""
    try:
        return RegisterDevices.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"])
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise RegisterConfigError(problems, source=source) from err


def read_register_devices(path: Path) -> RegisterDevices:
    """Load a ``.toml`` or ``.json`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RegisterConfigError([f"cannot read the file: {err}"], source=str(path)) from err
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise RegisterConfigError(
            [f"not valid {path.suffix[1:]}: {err}"], source=str(path)
        ) from err
    if not isinstance(raw, dict):
        raise RegisterConfigError(["the document must be a table/object"], source=str(path))
    return parse_register_devices(raw, source=str(path))


def load_register_devices(environ: Mapping[str, str] | None = None) -> RegisterDevices:
    """The register's devices from the environment (file, inline JSON or preset)."""
    env = os.environ if environ is None else environ
    preset = env.get(ENV_PRESET, "")
    if preset not in ("", "none", "simulated"):
        raise RegisterConfigError([f"{ENV_PRESET} must be 'simulated' or unset"], source="env")
    if env.get(ENV_FILE):
        devices = read_register_devices(Path(env[ENV_FILE]))
    elif env.get(ENV_JSON):
        try:
            raw = json.loads(env[ENV_JSON])
        except ValueError as err:
            raise RegisterConfigError([f"{ENV_JSON} is not JSON: {err}"], source="env") from err
        if not isinstance(raw, dict):
            raise RegisterConfigError([f"{ENV_JSON} must be a JSON object"], source="env")
        devices = parse_register_devices(raw, source=ENV_JSON)
    else:
        devices = RegisterDevices()
    if preset == "simulated":
        devices = devices.model_copy(update={"preset": "simulated"})
    return devices
