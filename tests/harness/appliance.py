"""The appliance in a test: in-process (ledger + replicator tasks) or as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

from edge.ledger import Ledger
from edge.replication.replicator import ReplicationSettings, Replicator
from protocols.broker_url import parse_broker_url

FAST = ReplicationSettings(
    ack_timeout=1.0, backoff_initial=0.05, backoff_max=0.5, error_backoff=1.0
)


class InProcessAppliance:
    """A real ledger and replicator in this event loop."""

    def __init__(
        self,
        *,
        device_id: str,
        ledger_path: Path,
        broker_url: str,
        settings: ReplicationSettings = FAST,
    ) -> None:
        self.device_id = device_id
        self.ledger = Ledger(ledger_path, register_id="1")
        self.broker_url = broker_url
        self.settings = settings
        self.replicator: Replicator | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InProcessAppliance:
        await self.ledger.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_replication()
        await self.ledger.close()

    def start_replication(self) -> None:
        self.replicator = Replicator(
            ledger=self.ledger,
            device_id=self.device_id,
            broker=parse_broker_url(self.broker_url),
            settings=self.settings,
        )
        self._task = asyncio.create_task(self.replicator.run(), name=f"replicator-{self.device_id}")

    async def stop_replication(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class ApplianceProcess:
    """``storefleet appliance`` as a child process that prints each committed sale id."""

    def __init__(self, *, device_id: str, ledger_path: Path, broker_url: str) -> None:
        self.device_id = device_id
        self.ledger_path = ledger_path
        self.broker_url = broker_url
        self.process: subprocess.Popen[str] | None = None
        self.committed: list[str] = []

    def start(self, *, rate: float = 0.0, count: int | None = None) -> None:
        argv = [
            sys.executable,
            "-m",
            "edge.cli",
            "appliance",
            "--device-id",
            self.device_id,
            "--ledger",
            str(self.ledger_path),
            "--broker-url",
            self.broker_url,
            "--rate",
            str(rate),
            "--print-commits",
            "--ack-timeout",
            "1",
        ]
        if count is not None:
            argv += ["--count", str(count)]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

    def read_commits(self, at_least: int) -> None:
        """Block until this run has printed ``at_least`` more commits."""
        assert self.process is not None
        assert self.process.stdout is not None
        target = len(self.committed) + at_least
        while len(self.committed) < target:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("appliance process ended early")
            if line.startswith("committed "):
                self.committed.append(line.split()[1])

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush beyond what the ledger already made durable."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        assert self.process.stdout is not None
        for line in self.process.stdout.read().splitlines():
            if line.startswith("committed "):
                self.committed.append(line.split()[1])
        self.process = None
