"""The register's devices: the settings' peripherals, with what the store configuration names.

The appliance's devices are configured in the control plane like the rest of the store (printer
connector and paper width, scanners, RFID readers; :mod:`protocols.store_config`). A device class
the applied configuration names replaces the settings' entry for it; one it leaves at its default
(printer ``connector = "none"``, no scanners, no readers) keeps what the settings file says, so a
bench or a demo with ``preset = "simulated"`` keeps its simulators. A configuration whose devices
python-escpos or the drivers cannot take (an unknown printer profile) is logged as an error naming
the key, and the register sells with the settings' devices and on-screen receipts meanwhile: a
typo in the console must not stop a store's tills.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.agent.configuration.files import AppliedUnreadable, read_applied
from edge.peripherals.register_config import (
    RegisterConfigError,
    RegisterDevices,
    parse_register_devices,
)
from edge.register.settings import RegisterSettings
from protocols import store_config as schema

log = logging.getLogger(__name__)


def configured_devices(doc: schema.StoreConfig) -> dict[str, Any]:
    """The device entries the configuration names, in the settings' shape."""
    out: dict[str, Any] = {}
    printer = doc.printer
    if printer.connector != "none":
        addresses: dict[str, dict[str, Any]] = {
            "network": {"host": printer.host, "port": printer.port},
            "serial": {"serial_device": printer.serial_device},
            "usb": {
                "usb_vendor_id": printer.usb_vendor_id,
                "usb_product_id": printer.usb_product_id,
            },
        }
        out["printer"] = {
            "connector": printer.connector,
            **addresses[printer.connector],
            "paper": {"profile": printer.profile, "width_mm": printer.paper_width_mm},
        }
    if doc.scanners.hid_name_contains:
        out["hid_scanners"] = {"name_contains": tuple(doc.scanners.hid_name_contains)}
    if doc.scanners.serial:
        out["serial_scanners"] = tuple(
            {"name": s.name, "port": s.device, "baudrate": s.baudrate} for s in doc.scanners.serial
        )
    if doc.rfid:
        out["rfid"] = tuple(
            {
                "name": r.name,
                "kind": r.kind,
                "host": r.host or "",
                "port": r.port,
                "serial_port": r.device or "",
                "antennas": tuple(r.antennas),
            }
            for r in doc.rfid
        )
    return out


def register_devices(settings: RegisterSettings) -> RegisterDevices:
    """The devices the register opens: the settings', with the applied configuration's."""
    devices = settings.peripherals
    try:
        applied = read_applied(settings.data_dir)
    except AppliedUnreadable:
        return devices  # store_source already said so
    if applied is None:
        return devices
    named = configured_devices(applied.config)
    if not named:
        return devices
    raw = devices.model_dump(exclude_defaults=True) | named
    if "printer" not in raw:
        raw.pop("drawer", None)  # the drawer is kicked through the printer
    try:
        return parse_register_devices(raw, source=f"store configuration {applied.version}")
    except RegisterConfigError as err:
        log.error(
            "%s; fix the device keys in the control plane — selling with the settings' devices",
            err,
        )
        return devices
