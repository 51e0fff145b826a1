"""Until the demo moves to :mod:`edge.register.demo`: its old way to run a register.

The register is composed in :mod:`edge.register.compose` now (the kiosk package holds UI only);
serving the kiosk is :mod:`edge.kiosk.server`. ``run_register(EdgeSettings, RegisterOptions)``
here translates the demo's old call into :class:`~edge.register.settings.RegisterSettings` and
will be removed with it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.kiosk.server import KioskServer, kiosk_server, serve_kiosk
from edge.peripherals.register_config import RegisterDevices
from edge.pos.simulated_cashier import CashierSettings
from edge.register.compose import run_register as compose_register
from edge.register.demo import DEMO_SETTINGS, run_demo_store
from edge.register.settings import load_register_settings
from edge.settings import EdgeSettings

__all__ = ["KioskServer", "RegisterOptions", "kiosk_server", "run_register", "serve_kiosk"]


@dataclass(frozen=True, kw_only=True)
class RegisterOptions:
    """The demo's old options (the store and catalog come from ``demo.toml`` now)."""

    kiosk_host: str = "127.0.0.1"
    kiosk_port: int = 8080
    catalog_url: str | None = None
    tenant_id: str | None = None
    replicate: bool = True


async def run_register(
    settings: EdgeSettings,
    options: RegisterOptions | None = None,
    *,
    peripherals: RegisterDevices | None = None,
    cashier: CashierSettings | None = None,
    stop: asyncio.Event | None = None,
    **more: Any,
) -> None:
    """The demo's register, composed from ``demo.toml`` like any other."""
    opts = options or RegisterOptions()
    given: dict[str, Any] = {
        "data_dir": Path(settings.ledger_path).parent,
        "register_id": settings.register_id,
        "broker_url": settings.broker_url,
        "control_plane_url": opts.catalog_url,
        "tenant_id": opts.tenant_id,
        "kiosk": {"host": opts.kiosk_host, "port": opts.kiosk_port},
        "replication": {"enabled": opts.replicate},
        "simulate": {
            "card_terminal": True,
            "cashier_rate": cashier.rate if cashier is not None else 0.0,
            "cashier_seed": cashier.seed if cashier is not None else None,
        },
        "peripherals": peripherals or RegisterDevices(),
    }
    if settings.identity_dir is not None:
        given["identity_dir"] = settings.identity_dir
    else:
        given["device_id"] = settings.device_id
    composed = load_register_settings(DEMO_SETTINGS, environ={}, **given)
    if composed.identity_dir is not None:  # a first-boot test: the register alone
        await compose_register(composed, stop=stop, **more)
        return
    await run_demo_store(composed, stop=stop, **more)
