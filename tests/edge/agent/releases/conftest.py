"""The agent's release tests: the bundles (the wheel built once per session) and the appliance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.services import Mosquitto

from ..agent_harness import new_device_id
from ..agent_process import AgentProcess
from .bundles import Releases, build_bumped_wheel, make_releases
from .on_appliance import appliance


@pytest.fixture(scope="session")
def app_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel at the new version (pip wheel --no-deps, ~10 s, once)."""
    return build_bumped_wheel(tmp_path_factory.mktemp("app-wheel"))


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory, app_wheel: Path) -> Releases:
    """A signing key and the bundles the tests publish."""
    return make_releases(tmp_path_factory.mktemp("bundles"), app_wheel)


@pytest.fixture
def new_appliance(
    tmp_path: Path, mosquitto: Mosquitto, releases: Releases
) -> Iterator[Callable[..., AgentProcess]]:
    """Makes the test's appliance (:func:`.on_appliance.appliance`: options are its keywords)
    with a device id of its own; stopped at the end if the test did not stop it."""
    made: list[AgentProcess] = []

    def make(**options: Any) -> AgentProcess:
        app = appliance(tmp_path / "appliance", new_device_id(), mosquitto.url, releases, **options)
        made.append(app)
        return app

    yield make
    for app in made:
        app.stop()
