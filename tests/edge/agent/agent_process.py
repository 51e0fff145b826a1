"""The fleet agent as the appliance runs it: ``python -m edge.cli agent`` in a child process.

The agent starts the register (another process) itself; the test finds it as the agent's child
(psutil), reads its ``/healthz`` on the kiosk port, and sends commands over the real broker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE
from tests.harness.services import free_port

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class AgentProcess:
    """One appliance: agent settings, register settings, the agent's process."""

    workdir: Path
    device_id: str
    broker_url: str
    control_plane_url: str | None = None
    agent: dict[str, Any] = field(default_factory=dict)  # more agent settings
    register: dict[str, Any] = field(default_factory=dict)  # more register settings
    env: dict[str, str] = field(default_factory=dict)  # more environment for the agent
    kiosk_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)  # the agent's own /metrics
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def register_log(self) -> Path:
        return self.data_dir / "logs" / "register.log"

    @property
    def agent_log(self) -> Path:
        return self.workdir / "agent.log"

    def write_settings(self) -> Path:
        register = {
            "store_file": str(DEMO_STORE),
            "catalog": {"file": str(DEMO_CATALOG), "sync": False},
            "kiosk": {"port": self.kiosk_port},
            "simulate": {"card_terminal": True},
            "replication": {"ack_timeout_s": 1.0, "backoff_max_s": 0.5},
            "log": {"format": "json"},
        }
        for key, value in self.register.items():
            if isinstance(value, dict):
                register.setdefault(key, {}).update(value)  # type: ignore[union-attr]
            else:
                register[key] = value
        register_file = self.workdir / "register.json"
        register_file.write_text(json.dumps(register))
        agent = {
            "device_id": self.device_id,
            "broker_url": self.broker_url,
            "data_dir": str(self.data_dir),
            "register_settings": str(register_file),
            "state_interval_s": 5.0,
            "metrics_port": self.metrics_port,
            **({"control_plane_url": self.control_plane_url} if self.control_plane_url else {}),
            **self.agent,
        }
        agent_file = self.workdir / "agent.json"
        agent_file.write_text(json.dumps(agent))
        return agent_file

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = self.write_settings()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
        env["PYTHONPATH"] = str(ROOT)
        env |= self.env
        with self.agent_log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge.agent", "--settings", str(settings)],  # the service's
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )

    def register_pids(self) -> list[int]:
        """The register processes the agent runs now (its children)."""
        assert self.process is not None
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    async def healthz(self) -> dict[str, Any] | None:
        """The register's ``/healthz`` body when it answers, else None."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(f"http://127.0.0.1:{self.kiosk_port}/healthz")
        except httpx.TransportError:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def metrics(self) -> str | None:
        """The agent's own ``/metrics`` text, or None while nothing answers."""
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            raise AssertionError(f"/metrics answered {response.status_code}: {response.text}")
        if not response.headers["content-type"].startswith("text/plain; version="):
            raise AssertionError(f"/metrics is {response.headers['content-type']}")
        return response.text

    def stop(self) -> int:
        """SIGTERM, as systemd stops the agent; returns its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self.process = None
        return code

    def logged_sales(self) -> list[str]:
        """Every sale id the register logged as committed (after its commit returned)."""
        sales = []
        for line in self.register_log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("message") == "sale committed":
                    sales.append(record["sale_id"])
        return sales
