"""What the agent's release tests on a real appliance share: its settings, and what they watch.

The appliance is the real agent process (``python -m edge.agent``) supervising the real register
with a simulated cashier ringing sales; :func:`appliance` is its one set-up (the ``appliance``
fixture of this directory's conftest hands it out). The test plays the control plane on the broker
(:func:`publish` a desire, :func:`progress_until_final` its reports) and reads the register's
``/healthz`` (:func:`selling`, :func:`selling_again`) and the agent's ``slots.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocols.codec import encode
from protocols.messages import DesiredRelease, Event
from protocols.topics import Channel, device_topic
from protocols.vocabulary import EventKind
from tests.harness.services import wait_until

from ..agent_harness import ControlPlane
from ..agent_process import AgentProcess
from .bundles import Releases

GUARD_S = 300  # only against hangs (a register starts in 30 s on a machine under load 25)
FINAL = {"succeeded", "failed", "reverted", "timed_out"}


def appliance(
    workdir: Path,
    device_id: str,
    broker_url: str,
    releases: Releases,
    *,
    health_window_s: float = 2.0,
    peripherals: bool = False,
) -> AgentProcess:
    """An appliance trusting ``releases``' key, its register selling (and, with
    ``peripherals``, printing receipts on the simulated store's network printer)."""
    register: dict[str, Any] = {"simulate": {"cashier_rate": 5.0, "cashier_seed": 3}}
    if peripherals:
        register["peripherals"] = {"preset": "simulated"}
    return AgentProcess(
        workdir=workdir,
        device_id=device_id,
        broker_url=broker_url,
        register=register,
        agent={
            "trusted_release_keys": [releases.public_key],
            "release_health_window_s": health_window_s,
            "start_timeout_s": 90.0,
            "heartbeat_timeout_s": 30.0,  # a loaded test machine must not look like a hang
            "backoff_initial_s": 0.2,
        },
    )


async def selling(app: AgentProcess, more_than: int = 0) -> bool:
    health = await app.healthz()
    return health is not None and health["ready"] and health["sales"]["committed"] > more_than


async def selling_again(app: AgentProcess) -> None:
    """Until the register running now commits a sale after this call."""
    health = await app.healthz()
    before = 0 if health is None else health["sales"]["committed"]
    await wait_until(lambda: selling(app, before), timeout=GUARD_S, what="selling again")


async def publish(cp: ControlPlane, wanted: DesiredRelease) -> None:
    topic = device_topic(cp.device_id, Channel.RELEASE)
    await cp.client.publish(topic, encode(wanted), qos=1, retain=True)


async def progress_until_final(cp: ControlPlane, version: str) -> list[dict[str, Any]]:
    """Every release.progress body for ``version`` up to and including a final state."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["state"] not in FINAL:
        event = await cp.next(
            lambda m: (
                isinstance(m, Event)
                and m.kind == EventKind.RELEASE_PROGRESS
                and m.body["version"] == version
            )
        )
        assert isinstance(event, Event)
        seen.append(event.body)
    return seen


def slots(app: AgentProcess) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((app.data_dir / "app" / "slots.json").read_text())
    return state
