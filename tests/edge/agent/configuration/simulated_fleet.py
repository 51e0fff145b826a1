"""Many appliances' configuration side in one process, each the agent's real code.

Why: 1,000 real agent processes (each starting a register) do not fit on a 2-core machine, and a
mock would prove nothing. What each simulated appliance runs is the fleet agent's own code for
configuration, unchanged: :class:`~edge.agent.session.FleetAgent` (its own MQTT session, client
id ``{device}.agent``, the retained ``config`` subscribed at QoS 1, reconnect with the fleet's
backoff), :class:`~edge.agent.configuration.applier.ConfigApplier` (validation against the
schema, never back in version, the atomic write of ``applied.json`` with fsync) and
:class:`~edge.agent.state.StatePublisher` (the retained ``state`` with the applied version and
per-key hashes). What it leaves out: the register (no register runs, so every version is written
and "restarted" at once — the path a register that is down takes), the ``events`` outbox, the
register link, supervisor and releases. All of them run in one event loop, so their CPU work
(validating 1,000 documents, writing 1,000 files) is done one after another on one core, where
1,000 real appliances would each do their own at once: figures from here are pessimistic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.agent.commands import CommandRunner
from edge.agent.configuration.applier import ConfigApplier
from edge.agent.session import AgentSettings, FleetAgent
from edge.agent.state import StatePublisher
from protocols.broker_url import parse_broker_url

ROOT = Path(__file__).resolve().parents[4]


class NoRegister:
    """The register side of applying when no register runs: nothing to hold or reload."""

    def running(self) -> bool:
        return False

    async def hold(self, version: int) -> str | None:
        return None

    async def reload(self, version: int) -> str | None:
        return None

    def restart(self) -> None:
        """No register to restart."""


@dataclass
class SimulatedAppliance:
    """One appliance's agent configuration code and MQTT session."""

    device_id: str
    config: ConfigApplier
    state: StatePublisher
    session: FleetAgent
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def build(cls, *, device_id: str, broker_url: str, data_dir: Path) -> SimulatedAppliance:
        events: list[tuple[str, dict[str, Any]]] = []
        config = ConfigApplier(
            data_dir=data_dir,
            register=NoRegister(),
            emit=lambda kind, body: events.append((kind, body)),
            device_id=device_id,
        )
        state = StatePublisher(
            device_id=device_id,
            health=dict,
            config_version=config.version,
            interval_s=3600.0,  # on change (and connect) only, as an idle agent does in a minute
            check_s=60.0,  # no peripherals here: only a poke (a version applied) changes it
        )
        state.config_hashes = config.hashes

        def applied() -> None:  # what the agent's process does (edge.agent.process)
            state.config_version = config.version
            state.config_hashes = config.hashes
            state.poke()

        config.on_change = applied
        settings = AgentSettings(state_interval_s=3600.0, keepalive=60, timeout_s=60.0)
        session = FleetAgent(
            device_id=device_id,
            broker=parse_broker_url(broker_url),
            commands=CommandRunner(device_id=device_id, handlers={}),
            state=state,
            settings=settings,
            on_config=config.receive,
        )
        return cls(device_id=device_id, config=config, state=state, session=session, events=events)


@contextlib.asynccontextmanager
async def simulated_fleet(
    device_ids: list[str], *, broker_url: str, data_root: Path, connect_s: float = 300.0
) -> AsyncIterator[list[SimulatedAppliance]]:
    """Run an appliance per id (data under ``data_root/<id>``) until the block ends; every one
    is connected when the block starts."""
    fleet = [
        SimulatedAppliance.build(device_id=d, broker_url=broker_url, data_dir=data_root / d)
        for d in device_ids
    ]
    for appliance in fleet:
        appliance.config.data_dir.mkdir(parents=True, exist_ok=True)
    tasks: list[asyncio.Task[None]] = []
    try:
        for appliance in fleet:
            tasks.append(asyncio.create_task(appliance.session.run(), name=appliance.device_id))
            tasks.append(asyncio.create_task(appliance.config.run(), name=appliance.device_id))
        async with asyncio.timeout(connect_s):
            for appliance in fleet:
                await appliance.session.connected.wait()
        yield fleet
    finally:
        for task in tasks:
            task.cancel()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
        died = [e for e in ended if isinstance(e, Exception)]
        if died:  # a session or applier that died is a failure, never unseen
            raise ExceptionGroup("simulated appliances died", died)


@contextlib.asynccontextmanager
async def fleet_in_processes(
    ids: list[str], *, broker_url: str, workers: int, data_root: Path
) -> AsyncIterator[list[int]]:
    """``ids`` as simulated appliances in ``workers`` processes of their own (so the control
    plane under test does not share their event loop), all connected when the block starts
    (it gets their process ids); stopped (standard input closed) when it ends, data kept."""
    children = []
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    try:
        for w in range(workers):
            share = ids[w::workers]
            listed = _listed(data_root, share)
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.edge.agent.configuration.simulated_fleet",
                broker_url,
                str(data_root),
                str(listed),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
                env=env,
            )
            children.append(child)
        async with asyncio.timeout(900):
            for child in children:
                assert child.stdout is not None
                line = await child.stdout.readline()
                if not line.startswith(b"ready"):
                    raise RuntimeError(f"a fleet worker did not start: {line!r}")
        yield [child.pid for child in children]
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            try:
                async with asyncio.timeout(60):
                    await child.wait()
            except TimeoutError:
                child.kill()


def _listed(data_root: Path, ids: list[str]) -> Path:
    """A file naming ``ids``, one a line, for a worker process to read."""
    data_root.mkdir(parents=True, exist_ok=True)
    listed = data_root / f"worker-{uuid.uuid4().hex[:8]}.ids"
    listed.write_text("\n".join(ids))
    return listed


async def _serve(broker_url: str, data_root: Path, ids: list[str]) -> None:
    """Host ``ids`` until standard input closes (bench/config.py runs a few of these)."""
    async with simulated_fleet(ids, broker_url=broker_url, data_root=data_root):
        print(f"ready {len(ids)}", flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    # python -m tests.edge.agent.configuration.simulated_fleet BROKER_URL DATA_ROOT IDS_FILE
    asyncio.run(_serve(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]).read_text().split()))
