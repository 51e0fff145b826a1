"""The release bundles of the agent's release tests: the wheel is built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .bundles import Releases, build_bumped_wheel, make_releases


@pytest.fixture(scope="session")
def app_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel at the new version (pip wheel --no-deps, ~10 s, once)."""
    return build_bumped_wheel(tmp_path_factory.mktemp("app-wheel"))


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory, app_wheel: Path) -> Releases:
    """A signing key and the bundles the tests publish."""
    return make_releases(tmp_path_factory.mktemp("bundles"), app_wheel)
