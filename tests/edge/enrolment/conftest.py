"""Fixtures of the appliance's enrolment tests: a served control plane on SQLite with its CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import Fleet, make_ca, served_fleet
from tests.harness.services import Mosquitto


@pytest.fixture(scope="session")
def appliance_fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """The fleet CA the control plane signs with and the QR codes pin."""
    return make_ca(tmp_path_factory.mktemp("appliance-fleet-ca") / "ca")


@pytest.fixture
async def control_plane(
    mosquitto: Mosquitto, appliance_fleet_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[Fleet]:
    """The appliance's side is store-agnostic: one SQL back end (SQLite) is enough here."""
    async with served_fleet(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}",
        ingest_broker_url=mosquitto.url,
        ca_directory=appliance_fleet_ca.directory,
    ) as running:
        yield running
