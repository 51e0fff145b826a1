"""The demo's registers: the production composition, read from ``demo.toml`` plus each store.

Nothing of the demo is reachable from a production start: the demo store document, catalog,
card terminal simulator and simulated peripherals are named only by ``demo.toml``, which only
this module reads. :func:`run_demo_store` runs one store's register with its fleet agent in this
process (the agent does not start the register here, the demo does: many stores, one process),
talking over the same local socket as on an appliance, so the console's commands and state work.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge.agent.process import FleetAgentProcess
from edge.agent.settings import FleetAgentSettings
from edge.register.compose import run_register
from edge.register.settings import RegisterSettings, load_register_settings
from mqttlink.tasks import ServiceTasks

DEMO_SETTINGS = Path(__file__).with_name("demo.toml")


def demo_register_settings(
    *,
    device_id: str,
    data_dir: Path,
    broker_url: str,
    kiosk_host: str = "127.0.0.1",
    kiosk_port: int = 8080,
    control_plane_url: str | None = None,
    tenant_id: str | None = None,
    peripherals: bool = True,
    cashier_rate: float = 0.0,
    cashier_seed: int | None = None,
) -> RegisterSettings:
    """One demo store's register settings (the process environment is not consulted)."""
    given: dict[str, Any] = {
        "device_id": device_id,
        "data_dir": data_dir,
        "broker_url": broker_url,
        "control_plane_url": control_plane_url,
        "tenant_id": tenant_id,
        "kiosk": {"host": kiosk_host, "port": kiosk_port},
        "simulate": {
            "card_terminal": True,
            "cashier_rate": cashier_rate,
            "cashier_seed": cashier_seed,
        },
    }
    if not peripherals:
        given["peripherals"] = {"preset": "none"}
    return load_register_settings(DEMO_SETTINGS, environ={}, **given)


async def run_demo_store(
    settings: RegisterSettings, *, stop: asyncio.Event | None = None, **more: Any
) -> None:
    """One store: its fleet agent (MQTT state, events, commands) and its register, until ``stop``.

    ``more`` goes to :func:`~edge.register.compose.run_register` (tests: replication tuning).
    """
    socket = settings.data_dir.resolve() / "run" / "agent.sock"
    agent = FleetAgentProcess(
        FleetAgentSettings(
            device_id=settings.device_id,
            broker_url=settings.broker_url,
            control_plane_url=settings.control_plane_url,
            data_dir=settings.data_dir,
            socket_path=socket,
            metrics_port=0,  # the register's /metrics in this same process carries its counters
        ),
        environ={},
        supervise=False,
    )
    async with ServiceTasks(f"demo store {settings.device_id}") as tasks:
        tasks.spawn(agent.run(), name=f"fleet-agent-{settings.device_id}")
        await run_register(settings.model_copy(update={"agent_socket": socket}), stop=stop, **more)
