"""A served control plane with a real CA, and a real Mosquitto on its mTLS listener.

Shared by the provisioning tests of the control plane, the appliance and the integration test
(imported, not a conftest, so each test module keeps its fixtures visible in its own file).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.app import create_app
from control_plane.operators.principal import Role
from control_plane.provisioning.authority import FleetAuthority
from control_plane.provisioning.settings import ProvisioningSettings
from control_plane.settings import ControlPlaneSettings
from edge.pos.store_config import DEMO_CATALOG
from provisioning.broker_config import BrokerFiles, write_broker_directory
from provisioning.ca import CertificateAuthority
from tests.harness.control_plane import (
    Session,
    bearer,
    bootstrap_admin,
    log_in,
    operator_settings,
    serving,
)
from tests.harness.services import free_port

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"
PASSPHRASE = "provisioning tests passphrase"
TENANT, STORE, OTHER_STORE = "acme", "acme-01", "acme-02"


def make_ca(directory: Path) -> CertificateAuthority:
    """A fresh fleet CA encrypted with the tests' passphrase."""
    return CertificateAuthority.create(directory, passphrase=PASSPHRASE.encode())


@dataclass
class Fleet:
    """The running control plane: its URL, an API client (the bootstrap platform admin's), the
    app and its CA holder."""

    url: str
    api: httpx.AsyncClient
    app: FastAPI
    authority: FleetAuthority
    admin_token: str

    @property
    def engine(self) -> AsyncEngine:
        """The app's own engine (the store behind the API)."""
        engine: AsyncEngine = self.app.state.engine
        return engine

    def anonymous(self, **options: Any) -> httpx.AsyncClient:
        """A client without credentials (a device's calls, the public routes)."""
        return httpx.AsyncClient(base_url=self.url, timeout=30, **options)

    async def log_in(self, email: str, role: Role, tenant_id: str | None = TENANT) -> Session:
        """A new operator of ``role`` (of the test tenant unless a platform admin), logged in."""
        tenant = None if role is Role.PLATFORM_ADMIN else tenant_id
        return await log_in(self.url, self.engine, email=email, role=role, tenant_id=tenant)

    async def create_enrolment(self, **fields: Any) -> dict[str, Any]:
        """POST /api/enrolments for the test store (fields override); the created answer."""
        body = {"tenant_id": TENANT, "store_id": STORE, "created_by": "test-operator", **fields}
        response = await self.api.post("/api/enrolments", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def enrolment(self, enrolment_id: str) -> dict[str, Any]:
        """GET one enrolment."""
        response = await self.api.get(f"/api/enrolments/{enrolment_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def refusals(self, reason: str) -> float:
        """The refusal counter for `reason`, read from the app's /metrics like Prometheus."""
        text = (await self.api.get("/metrics/")).text
        prefix = f'storefleet_enrolment_refusals_total{{reason="{reason}"}} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0


@asynccontextmanager
async def served_fleet(
    *,
    database_url: str,
    ingest_broker_url: str,
    ca_directory: Path,
    device_broker_url: str = "mqtts://127.0.0.1:8883",
    service_broker_url: str | None = None,
    crl_file: Path | None = None,
    https: tuple[Path, Path, Path] | None = None,
    **more: Any,
) -> AsyncIterator[Fleet]:
    """The real app under uvicorn on a free loopback port, with a tenant and two stores.

    ``https``: (certificate chain, key, trust bundle) to serve HTTPS with, as a control plane
    an appliance reaches over a network must (its QR's URL is https unless on localhost).
    ``more`` are more `ControlPlaneSettings` fields (an ``identity_dir`` in the test's own
    directory when the app's links run on an mTLS broker)."""
    port = free_port()
    url = f"{'https' if https else 'http'}://{HOST}:{port}"
    tls: dict[str, Any] = {}
    verify: ssl.SSLContext | bool = True
    if https is not None:
        tls = {"ssl_certfile": str(https[0]), "ssl_keyfile": str(https[1])}
        verify = ssl.create_default_context(cafile=str(https[2]))
    token = await bootstrap_admin(database_url)
    app = create_app(
        ControlPlaneSettings(
            database_url=database_url, broker_url=ingest_broker_url, port=port, **more
        )
    )
    app.state.operator_settings = operator_settings()
    settings = ProvisioningSettings(
        directory=ca_directory,
        passphrase=PASSPHRASE,  # type: ignore[arg-type]  # pydantic turns it into a SecretStr
        public_url=url,
        device_broker_url=device_broker_url,
        service_broker_url=service_broker_url,
        crl_file=crl_file,
    )
    app.state.provisioning_settings = settings
    async with (
        serving(app, port=port, host=HOST, **tls),
        httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(token), verify=verify) as api,
    ):
        authority = FleetAuthority(settings=settings, engine=app.state.engine)
        app.state.provisioning = authority
        assert (await api.post("/api/tenants", json={"id": TENANT, "name": "Acme"})).is_success
        for store, name in ((STORE, "High Street"), (OTHER_STORE, "Station")):
            body = {"id": store, "tenant_id": TENANT, "name": name}
            assert (await api.post("/api/stores", json=body)).is_success
        yield Fleet(url=url, api=api, app=app, authority=authority, admin_token=token)


def _accepts_tcp(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


class BrokerProcess:
    """One mosquitto process for a rendered broker directory: start, stop, restart, reload."""

    def __init__(self, files: BrokerFiles, port: int, log: Path) -> None:
        self.files = files
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What devices are told to connect to."""
        return f"mqtts://{HOST}:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.files.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while not _accepts_tcp(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                msg = f"mosquitto did not start on {self.port}:\n{self.log.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        """SIGHUP, then wait until mosquitto logs the reload (it reloads before its next accept)."""
        assert self.process is not None
        seen = self.log.read_text().count("Reloading config.")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log.read_text().count("Reloading config.") == seen:
            if time.monotonic() > deadline:
                msg = f"mosquitto did not reload:\n{self.log.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.02)


class MtlsBroker(BrokerProcess):
    """Mosquitto as shipped from images/mosquitto, on free ports: the appliances' listener
    (client ids bound to certificates) and the control plane's service listener."""

    def __init__(
        self, directory: Path, *, ca: CertificateAuthority, also_known_as: tuple[str, ...] = ()
    ) -> None:
        """``also_known_as``: more names in its certificate (a VM reaches the host as 10.0.2.2)."""
        port = free_port()
        self.service_port = free_port()
        files = write_broker_directory(
            directory,
            ca=ca,
            hostnames=["localhost", HOST, *also_known_as],
            port=port,
            bind_address=HOST,
            # as root, mosquitto would switch to user "mosquitto", who cannot read the 0600 key
            run_as_user="root" if os.geteuid() == 0 else None,
            service_port=self.service_port,
        )
        super().__init__(files, port, directory / "mosquitto.log")

    @property
    def service_url(self) -> str:
        """Where control-plane sessions connect (many at once, all CN `control-plane`)."""
        return f"mqtts://{HOST}:{self.service_port}"


def tls_refusal(port: int, context: ssl.SSLContext) -> None:
    """Connect and read one byte; mosquitto's refusal arrives as a TLS alert."""
    with (
        socket.create_connection((HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.recv(1)


async def seed_demo_catalog(fleet: Fleet) -> None:
    """The demo catalog as TENANT's catalog in the control plane, which enrolled registers sync."""
    items = json.loads(DEMO_CATALOG.read_text())["items"]
    seeded = await fleet.api.post("/api/catalog/items", json={"tenant_id": TENANT, "items": items})
    assert seeded.status_code == 200, seeded.text
