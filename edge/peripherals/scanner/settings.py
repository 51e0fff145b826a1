"""Scanner configuration (validated at start)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WedgeSettings(BaseModel):
    """How a keyboard-wedge (USB HID) scanner types its data."""

    model_config = ConfigDict(frozen=True)

    name_contains: tuple[str, ...] = ("Barcode", "Scanner", "Honeywell", "Zebra", "Datalogic")
    layout: str = Field(default="us", pattern="^(us|de)$")
    prefix: str = ""
    suffix: str = ""
    terminators: tuple[str, ...] = ("KEY_ENTER", "KEY_KPENTER")
    group_separator_key: str | None = "KEY_F8"  # many scanners map GS (FNC1) to a function key
    aim_ids: bool = False
    poll_s: float = Field(default=1.0, gt=0)  # how often the hot-plug watcher looks for devices


class SerialScannerSettings(BaseModel):
    """A scanner on a serial (or USB-CDC) port that sends one frame per scan."""

    model_config = ConfigDict(frozen=True)

    port: str
    baudrate: int = 9600
    prefix: str = ""
    suffix: str = ""
    terminator: str = "\r"  # CR is the factory default of most serial scanners
    aim_ids: bool = False
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
