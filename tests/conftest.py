"""Shared fixtures: real Mosquitto, real PostgreSQL, the cloud store on both SQL back ends."""

from __future__ import annotations

import os

# The command lines print with rich, which wraps at the terminal's width, read once when a
# module makes its Console: a test that reads their output must not pass or fail with the width
# of whoever runs it (a terminal, CI's pipe, a pytest-xdist worker), or with which test happened
# to import a command first. One wide, fixed width for every test and every process it starts,
# set before anything below imports a command line.
os.environ["COLUMNS"] = "200"
# Webhook signing secrets are sealed with this key (issue 13); a control plane without one
# refuses webhook channels, which a test asks for explicitly (secrets_key=None).
os.environ.setdefault(
    "STOREFLEET_CP_NOTIFY_SECRETS_KEY", "storefleet tests' webhook sealing key 0123456789"
)
# Customer profiles are sealed under this master key (issue 14); without one, customer routes
# answer 503, which a test asks for explicitly.
os.environ.setdefault(
    "STOREFLEET_CP_CUSTOMERS_MASTER_KEY", "storefleet tests' customer master key 0123456789"
)

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from playwright.async_api import expect

from provisioning.ca import CertificateAuthority
from tests.control_plane.provisioning.fleet_harness import MtlsBroker, make_ca
from tests.harness.cloud import Cloud
from tests.harness.services import Mosquitto, create_pg_database, drop_pg_database

# Hypothesis fails an example that takes over 200 ms by default: a timed assertion, which this
# suite does not make (speed is measured in bench/). Under four xdist workers on two cores an
# example took 354 ms and failed CI. No deadline for any property test; each may still set its own.
settings.register_profile("storefleet", deadline=None)
settings.load_profile("storefleet")

# Playwright's assertions retry until their timeout (5 s by default), so a longer one slows no
# passing test: it only moves the point where a hung page is called a failure. Under four xdist
# workers on two cores a page took longer than 5 s to show what it then showed (the own-store and
# offline-sale tests). Browser tests may still set their own.
expect.set_options(timeout=20_000)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto on its own port, which the test may kill and restart."""
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The cloud store: embedded SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"
        return
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture
async def cloud(database_url: str, mosquitto: Mosquitto) -> AsyncIterator[Cloud]:
    """The real ingest worker and store, running, subscribed to the private broker."""
    harness = Cloud(database_url=database_url, broker_url=mosquitto.url)
    await harness.open()
    await harness.start_ingest()
    yield harness
    await harness.close()


@pytest.fixture(scope="module")
def fleet_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """A fleet CA (root + issuing) for one test module."""
    return make_ca(tmp_path_factory.mktemp("fleet") / "ca")


@pytest.fixture(scope="module")
def mtls_broker(
    fleet_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MtlsBroker]:
    """Mosquitto with the mTLS listener, per-device ACL and CRL from images/mosquitto."""
    running = MtlsBroker(tmp_path_factory.mktemp("mtls-broker"), ca=fleet_ca)
    running.start()
    yield running
    running.stop()
