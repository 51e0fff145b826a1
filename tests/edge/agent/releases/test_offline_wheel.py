"""The release tests' app wheel builds with no package index (CI on a clean clone, offline).

pip is cut off from every index and find-links (its config files ignored, ``PIP_NO_INDEX``):
the build must use the venv's setuptools and wheel, not fetch them into an isolated build
environment. With build isolation the same build is refused (that it can fail is checked).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from storefleet.release_cli import ReleaseBuildError, build_app_wheel

from .bundles import NEW_VERSION, build_bumped_wheel

pytestmark = pytest.mark.slow


@pytest.fixture
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip (a subprocess: it inherits the environment) without any index or local wheels."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)


@pytest.mark.usefixtures("no_index")
def test_the_release_tests_wheel_builds_without_an_index(tmp_path: Path) -> None:
    wheel = build_bumped_wheel(tmp_path)
    assert wheel.name == f"storefleet-{NEW_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as built:
        assert f'VERSION = "{NEW_VERSION}"' in built.read("edge/appliance.py").decode()


@pytest.mark.usefixtures("no_index")
def test_an_isolated_build_needs_the_index_it_cannot_reach(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[4]
    with pytest.raises(ReleaseBuildError, match="pip wheel failed"):
        build_app_wheel(project, tmp_path / "wheel", build_isolation=True)
