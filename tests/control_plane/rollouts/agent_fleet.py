"""Many appliances in a few worker processes, each running the fleet agent's own code.

Why: a hundred real agent processes, each with its real register, do not fit a loaded 2-core
machine next to the rest of the suite; a mock would prove nothing. Each simulated appliance is
a real :class:`~edge.agent.process.FleetAgentProcess`, unchanged — its MQTT session (client id
``{device}.agent``, the retained ``release`` desire at QoS 1, events and State), the register
link on its own Unix socket, the supervisor running the register as a child process, and the
release manager: download with Range resume over HTTPS from the control plane as the device
(the identity the fleet CA issued into its data directory, the control plane's certificate
checked against the pinned fleet root), verification of size, sha256 and signature, install
into the inactive slot, switch, health window, commit or revert, and its reports. Many of them
share one event loop per worker process (the way tests/edge/agent/configuration/simulated_fleet.py
runs 1,000 agents' configuration code), so the control plane under test keeps its own loop.

What differs from an appliance, and why:

* the register is the small app of :mod:`.appliance_app` (the contract and nothing else), built
  into each release's bundle, so the agent's supervision and health window decide what a
  release does, not the test;
* a slot is installed once per distinct release on the machine and hardlinked into the
  others (:class:`SharedSlots`): the agent's own :func:`~edge.agent.releases.install.
  install_into_slot` makes the first (a venv and pip, ~3 s of CPU), the rest are a directory
  of links — a hundred pip runs per wave would measure pip, not the rollout;
* an appliance starts with the old release already committed in slot ``a`` (as the image left
  it), its slot hardlinked the same way.

Run as ``python -m tests.control_plane.rollouts.agent_fleet JOB_FILE``; it prints ``ready N``
once every agent is connected and stops its agents (each register in order) when standard
input closes. :func:`fleet_in_processes` does that from a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.agent.process import FleetAgentProcess
from edge.agent.releases.install import install_into_slot
from edge.agent.releases.slots import SlotState, SlotStore
from edge.agent.settings import FleetAgentSettings

ROOT = Path(__file__).resolve().parents[3]


class SharedSlots:
    """Installs a release into a slot by hardlinking the one slot made for it on this machine.

    The first install of a set of wheels (keyed by their sha256) runs the agent's own
    :func:`install_into_slot` into ``<cache>/<key>``; every install of the same wheels is then
    a copy of that directory whose files are hardlinks (a slot is never written after install:
    the registers run with ``PYTHONDONTWRITEBYTECODE``).
    """

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def key(wheels: Sequence[Path]) -> str:
        digest = hashlib.sha256()
        for wheel in sorted(wheels, key=lambda w: w.name):
            digest.update(hashlib.sha256(wheel.read_bytes()).digest())
        return digest.hexdigest()[:24]

    async def template(self, wheels: Sequence[Path]) -> Path:
        """The slot made once for ``wheels`` (made now when there is none yet)."""
        key = self.key(wheels)
        made = self.cache / key
        async with self._locks.setdefault(key, asyncio.Lock()):
            if not made.exists():
                building = self.cache / f".{key}-{uuid.uuid4().hex[:6]}"
                await install_into_slot(building, list(wheels))
                with contextlib.suppress(OSError):  # another process made it meanwhile
                    building.rename(made)
                shutil.rmtree(building, ignore_errors=True)
        return made

    async def install(self, slot_dir: Path, wheels: list[Path]) -> None:
        """The agent's ``installer``: ``slot_dir`` becomes a linked copy of the release's slot."""
        made = await self.template(wheels)
        await asyncio.to_thread(link_copy, made, slot_dir)


def link_copy(source: Path, target: Path) -> None:
    """``target`` replaced by ``source``'s tree: directories made, files hardlinked."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, symlinks=True, copy_function=os.link)


@dataclass(frozen=True)
class Appliance:
    """One simulated appliance: who it is, where its data lives, whether it takes releases."""

    device_id: str
    data_dir: str
    takes_releases: bool = True  # False: its agent is online but never answers a release


@dataclass(frozen=True)
class FleetJob:
    """What a worker process runs: the appliances and the agent settings they share."""

    appliances: list[Appliance]
    settings: dict[str, Any]  # FleetAgentSettings fields, the same for every appliance
    slot_cache: str
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def read(cls, path: Path) -> FleetJob:
        raw = json.loads(path.read_text())
        return cls(
            appliances=[Appliance(**a) for a in raw["appliances"]],
            settings=raw["settings"],
            slot_cache=raw["slot_cache"],
        )


def seed_committed(data_dir: Path, template: Path, version: str) -> None:
    """The appliance as the image left it: ``version`` installed and committed in slot ``a``."""
    store = SlotStore(data_dir / "app")
    link_copy(template, store.slot_dir("a"))
    store.save(SlotState(active="a", committed="a", versions={"a": version}))


def agent_environment() -> dict[str, str]:
    """The environment every agent (and so every register) gets: none of the runner's
    STOREFLEET_ settings, and no bytecode written into a slot shared by hardlinks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@contextlib.asynccontextmanager
async def host(job: FleetJob, *, connect_s: float = 300.0) -> AsyncIterator[None]:
    """Run every appliance of ``job`` until the caller is done; all connected at the yield."""
    # the agents' blocking steps (verify, unpack, link a slot) go to threads: one each, not
    # the default few shared by fifty appliances
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=len(job.appliances) + 4)
    )
    slots = SharedSlots(Path(job.slot_cache))
    environ = agent_environment()
    agents = []
    for appliance in job.appliances:
        settings = FleetAgentSettings(
            device_id=appliance.device_id,
            data_dir=Path(appliance.data_dir),
            **job.settings,
        )
        agent = FleetAgentProcess(settings, environ=environ, supervise=appliance.takes_releases)
        agent.releases.installer = slots.install
        agents.append(agent)
    tasks = [asyncio.create_task(a.run(), name=a.settings.device_id) for a in agents]
    try:
        async with asyncio.timeout(connect_s):
            for agent in agents:
                while agent.session is None:  # noqa: ASYNC110 - made once the identity is read
                    await asyncio.sleep(0.05)
                await agent.session.connected.wait()
        yield
    finally:
        for task in tasks:
            task.cancel()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
        died = [e for e in ended if isinstance(e, Exception)]
        if died:
            raise ExceptionGroup("simulated appliances died", died)


@contextlib.asynccontextmanager
async def fleet_in_processes(
    appliances: Sequence[Appliance],
    *,
    settings: dict[str, Any],
    slot_cache: Path,
    workers: int,
    jobs_dir: Path,
) -> AsyncIterator[list[int]]:
    """``appliances`` spread over ``workers`` processes, all connected when the block starts
    (it gets their process ids); stopped when it ends (each register in order), data kept."""
    children = []
    env = agent_environment() | {"PYTHONPATH": str(ROOT)}
    await asyncio.to_thread(jobs_dir.mkdir, parents=True, exist_ok=True)
    try:
        for w in range(workers):
            job = FleetJob(
                appliances=list(appliances[w::workers]),
                settings=settings,
                slot_cache=str(slot_cache),
            ).write(jobs_dir / f"job-{uuid.uuid4().hex[:8]}.json")
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.control_plane.rollouts.agent_fleet", str(job),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                cwd=ROOT, env=env,
            )  # fmt: skip
            children.append(child)
        async with asyncio.timeout(600):
            for child in children:
                if child.stdout is None:
                    raise RuntimeError("a fleet worker without a standard output")
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
                await child.wait()


async def _serve(job_file: Path) -> None:
    job = FleetJob.read(job_file)
    async with host(job):
        print(f"ready {len(job.appliances)}", flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    import logging

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        filename=str(Path(sys.argv[1]).with_suffix(".log")),
    )
    asyncio.run(_serve(Path(sys.argv[1])))
