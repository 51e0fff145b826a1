"""The agent under systemd's Type=notify: READY=1 once it supervises, the watchdog fed, STOPPING=1;
the register it starts never gets the notify socket (only the agent speaks for the unit)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import psutil
import pytest

from tests.harness.services import Mosquitto, wait_until

from .agent_process import AgentProcess

pytestmark = [pytest.mark.services, pytest.mark.slow]
GUARD_S = 120


async def test_ready_watchdog_stopping_and_the_register_is_not_told(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    address = tmp_path / "notify.sock"
    heard: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(address))
        systemd.setblocking(False)

        def listen() -> list[str]:
            while True:
                try:
                    heard.extend(systemd.recv(4096).decode().splitlines())
                except BlockingIOError:
                    return heard

        appliance = AgentProcess(
            workdir=tmp_path / "appliance",
            device_id=f"reg-{uuid.uuid4().hex[:10]}",
            broker_url=mosquitto.url,
            env={"NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "1000000"},
        )
        appliance.start()
        try:
            async with asyncio.timeout(GUARD_S):
                await wait_until(lambda: "READY=1" in listen(), timeout=GUARD_S, what="READY=1")
                await wait_until(
                    lambda: listen().count("WATCHDOG=1") >= 2, timeout=GUARD_S, what="pings"
                )
                await wait_until(appliance.register_pids, timeout=GUARD_S, what="the register")
                (register,) = appliance.register_pids()
                environ = psutil.Process(register).environ()
        finally:
            code = appliance.stop()
        listen()
    assert code == 0
    assert "STOPPING=1" in heard
    assert not [name for name in environ if name.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))]
    assert environ["STOREFLEET_EDGE_DEVICE_ID"] == appliance.device_id
