"""Cancelling the agent ends it, even when the cancel lands as the broker acks a publish.

On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when it is cancelled
in the loop iterations between its awaited future finishing and its task resuming (CPython
gh-86296, fixed in 3.12). aiomqtt bounds every publish with it, so an agent cancelled as its
PUBACK arrived went back to waiting for commands and never ended: the hang of one run in four
of ``test_agent_commands.py``. The relay cancels the agent a given number of loop iterations
after a PUBACK reached it, which walks the cancel across that window.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.agent.session import AgentSettings
from edge.register.hub_commands import agent_for_hub
from protocols.broker_url import parse_broker_url
from tests.edge.peripherals.hub_harness import running_hub
from tests.harness.services import Mosquitto

from .agent_harness import new_device_id
from .mqtt_relay import mqtt_relay

pytestmark = pytest.mark.services
GUARD_S = 30  # only against hangs


def cancel_after(task: asyncio.Task[None], hops: int) -> None:
    """Cancel ``task`` once the loop has gone round ``hops`` more times."""
    if hops == 0:
        task.cancel()
    else:
        asyncio.get_running_loop().call_soon(cancel_after, task, hops - 1)


@pytest.mark.parametrize("hops", [pytest.param(n, id=f"{n}-iterations-after") for n in range(8)])
async def test_a_cancel_as_the_state_publish_is_acked_ends_the_agent(
    tmp_path: Path, mosquitto: Mosquitto, hops: int
) -> None:
    device_id = new_device_id()
    armed: list[asyncio.Task[None]] = []

    def on_puback() -> None:
        while armed:
            cancel_after(armed.pop(), hops)

    async with (
        running_hub(tmp_path) as run,
        mqtt_relay(broker_port=mosquitto.port, on_puback=on_puback) as relay,
    ):
        agent = agent_for_hub(
            device_id=device_id,
            broker=parse_broker_url(f"mqtt://127.0.0.1:{relay.port}"),
            hub=run.hub,
            journal=run.ledger,
            settings=AgentSettings(backoff_initial=0.05, state_check_s=0.02),
        )
        running = asyncio.create_task(agent.run(), name=f"agent-{device_id}")
        armed.append(running)  # the first PUBACK the agent gets is for its state on connect
        done, _ = await asyncio.wait({running}, timeout=GUARD_S)
        stuck = [t.get_name() for t in asyncio.all_tasks() if device_id in t.get_name()]
    assert running in done, f"agent still running after cancel: {stuck}"
    assert running.cancelled()
