"""Fixtures of the control plane's provisioning tests: a CA and the served control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import Fleet, make_ca, served_fleet
from tests.harness.services import Mosquitto


@pytest.fixture(scope="session")
def fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """One CA for the session: each test's SQL store keeps its own issued/revoked records."""
    return make_ca(tmp_path_factory.mktemp("fleet-ca") / "ca")


@pytest.fixture
async def fleet(
    database_url: str, mosquitto: Mosquitto, fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[Fleet]:
    """The control plane served on loopback, on SQLite and on PostgreSQL."""
    async with served_fleet(
        database_url=database_url,
        ingest_broker_url=mosquitto.url,
        ca_directory=fleet_ca.directory,
        crl_file=tmp_path / "crl.pem",
    ) as running:
        yield running
