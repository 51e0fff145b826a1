"""Printer configuration: which connector, which profile, how wide the paper is.

Validated once at start (pydantic), so a wrong config fails with a message naming the field
instead of a print job failing at the counter.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PaperSettings(BaseModel):
    """Layout side: python-escpos profile, characters per line, code style."""

    model_config = ConfigDict(frozen=True)

    profile: str = "TM-T88V"
    columns: int = Field(default=42, ge=24, le=64)  # 42 on 80 mm font A, 32 on 58 mm
    qr_module: int = Field(default=4, ge=1, le=16)
    qr_native: bool = False  # True: GS ( k on the printer; False: raster image (works everywhere)


class PrinterSettings(BaseModel):
    """Device side: the connector python-escpos opens for each job."""

    model_config = ConfigDict(frozen=True)

    connector: Literal["network", "serial", "usb", "file"]
    host: str = ""
    port: int = Field(default=9100, ge=1, le=65535)
    timeout_s: float = Field(default=5.0, gt=0)
    serial_device: str = ""
    baudrate: int = 19200
    usb_vendor_id: int = 0
    usb_product_id: int = 0
    file_path: str = ""
    drawer_pin: Literal[2, 5] = 2
    paper: PaperSettings = PaperSettings()

    @model_validator(mode="after")
    def _connector_has_its_address(self) -> PrinterSettings:
        needed = {
            "network": ("host", self.host),
            "serial": ("serial_device", self.serial_device),
            "usb": ("usb_vendor_id", self.usb_vendor_id),
            "file": ("file_path", self.file_path),
        }[self.connector]
        if not needed[1]:
            raise ValueError(f"printer connector {self.connector!r} needs {needed[0]} to be set")
        return self
