"""Printer configuration: which connector, which profile, how wide the paper is.

Validated once at start (pydantic), so a wrong config fails with a message naming the field
instead of a print job failing at the counter.

Paper width is a setting because the roll, not the printer model, decides it (a TM-T20II takes
58 or 80 mm rolls). Everything lays out to it: text columns, rules and every raster image (the
receipt QR code is centred on ``dots``, not on the model's widest paper):

=========  ==================  =======================  ===============================
width_mm   printable dots      columns (font A)         note
=========  ==================  =======================  ===============================
58         384                 32
80         576                 42 or 48                 or less when the profile says so
=========  ==================  =======================  ===============================

``dots`` and ``columns`` default from the paper width and the python-escpos capability profile
(a TM-T88V prints 512 dots and 42 columns on 80 mm paper; a TM-T20II 576 and 48). A config
without ``width_mm`` but with ``columns = 32`` (how 58 mm paper was set before ``width_mm``
existed) means 58 mm paper. ``cjk`` says
whether the printer has a double-byte (Kanji / GB18030) character mode and which encoding it
takes; the escpos profiles do not say, so it is a setting, off by default.
"""

from __future__ import annotations

from typing import Any, Literal

from escpos.capabilities import get_profile
from pydantic import BaseModel, ConfigDict, Field, model_validator

PaperWidth = Literal[58, 80]
CjkMode = Literal["gb18030", "shift_jis"]
STANDARD_DOTS: dict[int, int] = {58: 384, 80: 576}
ALLOWED_COLUMNS: dict[int, tuple[int, ...]] = {58: (32,), 80: (42, 48)}


def profile_media(profile: str) -> tuple[int | None, int | None]:
    """(printable dots, font A columns) of a python-escpos profile; None where unknown.

    Raises ``ValueError`` naming the setting for a profile python-escpos does not have.
    """
    try:
        data = get_profile(profile).profile_data
    except KeyError:
        raise ValueError(
            f"paper.profile {profile!r} is not a python-escpos printer profile "
            "(e.g. TM-T88V, TM-T20II, TM-P80, NT-5890K, default)"
        ) from None
    pixels = data.get("media", {}).get("width", {}).get("pixels")
    font_a = data.get("fonts", {}).get("0", {}).get("columns")
    return (
        int(pixels) if str(pixels).isdigit() else None,
        int(font_a) if str(font_a).isdigit() else None,
    )


class PaperSettings(BaseModel):
    """Layout side: python-escpos profile, paper width, characters per line, code style."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str = "TM-T88V"
    width_mm: PaperWidth = 80
    dots: int = Field(default=0, ge=0)  # 0: the paper's standard width, capped by the profile
    columns: int = Field(default=0, ge=0)  # 0: 32 on 58 mm; the profile's font A on 80 mm
    cjk: CjkMode | None = None  # the printer's double-byte mode (FS &), if it has one
    qr_module: int = Field(default=4, ge=1, le=16)  # dots per QR module
    qr_native: bool = False  # True: GS ( k on the printer; False: raster image (works everywhere)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_paper_and_profile(cls, data: Any) -> Any:
        """Fill ``dots`` and ``columns`` left at 0 from the paper width and the profile."""
        if not isinstance(data, dict):
            return data
        if data.get("width_mm") is None and data.get("columns") == 32:
            data = {**data, "width_mm": 58}  # a config from before width_mm: 32 columns is 58 mm
        width, profile = data.get("width_mm", 80), data.get("profile", "TM-T88V")
        if width not in STANDARD_DOTS or not isinstance(profile, str):
            return data  # the field validators say what is wrong
        pixels, font_a = profile_media(profile)
        out = dict(data)
        if not out.get("dots"):
            out["dots"] = min(STANDARD_DOTS[width], pixels or STANDARD_DOTS[width])
        if not out.get("columns"):
            allowed = ALLOWED_COLUMNS[width]
            out["columns"] = font_a if font_a in allowed else allowed[0]
        return out

    @model_validator(mode="after")
    def _fits_the_paper(self) -> PaperSettings:
        pixels, _ = profile_media(self.profile)
        standard = STANDARD_DOTS[self.width_mm]
        if self.dots % 8 or not 8 <= self.dots <= standard:
            raise ValueError(
                f"paper.dots must be a multiple of 8 up to {standard} on {self.width_mm} mm paper"
                f" (got {self.dots}); leave it unset for the standard width"
            )
        if pixels is not None and self.dots > pixels:
            raise ValueError(
                f"paper.dots {self.dots} is wider than the {self.profile} prints ({pixels} dots)"
            )
        allowed = ALLOWED_COLUMNS[self.width_mm]
        if self.columns not in allowed:
            choices = " or ".join(str(c) for c in allowed)
            raise ValueError(
                f"paper.columns must be {choices} on {self.width_mm} mm paper (got {self.columns})"
            )
        return self


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
