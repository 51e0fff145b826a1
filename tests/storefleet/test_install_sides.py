"""The cloud and the appliance install and start apart.

Each test runs a child interpreter that has only one side's distributions (``one_sided``): what
``pip install storefleet[cloud]`` or ``storefleet[appliance]`` would give, computed from the
package's own metadata. A module that imports the other side's library, or a library missing
from its side's extra, fails here.
"""

from __future__ import annotations

import json

import pytest

from tests.storefleet import one_sided

IMPORT_ALL = """
import importlib, json, pkgutil, sys
SKIP = ("control_plane.db.migrations",)  # alembic runs env.py only inside its own context
imported, failed = [], {}

def record(name):
    failed[name] = f"{sys.exc_info()[0].__name__}: {sys.exc_info()[1]}"

for package in sys.argv[1:]:
    root = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.walk_packages(root.__path__, package + ".", onerror=record):
        if info.name.startswith(SKIP) or info.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:
            record(info.name)
        else:
            imported.append(info.name)
print(json.dumps({"imported": imported, "failed": failed}))
"""


@pytest.mark.parametrize(
    ("side", "packages", "entry"),
    [
        pytest.param(
            "cloud",
            ("control_plane", "provisioning", "protocols"),
            "control_plane.app",
            id="cloud-without-edge-evdev-escpos-serial",
        ),
        pytest.param(
            "appliance",
            ("edge", "provisioning", "protocols"),
            "edge.cli",
            id="appliance-without-control-plane-sqlalchemy-asyncpg-amqtt",
        ),
    ],
)
def test_every_module_of_a_side_imports_with_only_that_side_installed(
    side: str, packages: tuple[str, ...], entry: str
) -> None:
    result = one_sided.run(side, IMPORT_ALL, *packages)

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["failed"] == {}
    assert entry in found["imported"]


@pytest.mark.parametrize(
    ("side", "module"),
    [
        pytest.param("cloud", "edge", id="cloud-has-no-edge"),
        pytest.param("cloud", "evdev", id="cloud-does-not-pull-evdev"),
        pytest.param("cloud", "escpos", id="cloud-does-not-pull-python-escpos"),
        pytest.param("cloud", "serial_asyncio_fast", id="cloud-does-not-pull-pyserial"),
        pytest.param("appliance", "control_plane", id="appliance-has-no-control-plane"),
        pytest.param("appliance", "asyncpg", id="appliance-does-not-pull-asyncpg"),
        pytest.param("appliance", "sqlalchemy", id="appliance-does-not-pull-sqlalchemy"),
        pytest.param("appliance", "amqtt", id="appliance-does-not-pull-the-embedded-broker"),
        pytest.param("appliance", "aiosqlite", id="appliance-does-not-pull-aiosqlite"),
    ],
)
def test_a_side_does_not_pull_the_other_sides_libraries(side: str, module: str) -> None:
    """Also proves the child can fail: the module is there in the full venv that runs it."""
    result = one_sided.run(side, f"import {module}")

    assert result.returncode == 1
    assert f"ModuleNotFoundError: {module} is not installed on this side" in result.stderr


RUN_ENTRY_POINT = """
import sys
from storefleet import cli
name, *args = sys.argv[1:]
sys.argv = [name, *args]
{"storefleet": cli.main, "storefleet-cloud": cli.cloud, "storefleet-appliance": cli.appliance}[
    name
]()
"""


@pytest.mark.parametrize(
    ("side", "shown", "absent", "other"),
    [
        pytest.param(
            "cloud",
            ("demo", "serve", "provision", "operators"),
            ("register", "agent", "enrol", "appliance "),
            "appliance",
            id="cloud",
        ),
        pytest.param(
            "appliance",
            ("demo", "register", "agent", "enrol", "appliance "),
            ("serve", "provision", "operators"),
            "cloud",
            id="appliance",
        ),
    ],
)
def test_storefleet_offers_the_installed_sides_commands_and_names_the_missing_extra(
    side: str, shown: tuple[str, ...], absent: tuple[str, ...], other: str
) -> None:
    result = one_sided.run(side, RUN_ENTRY_POINT, "storefleet", "--help")

    assert result.returncode == 0, result.stderr
    commands = result.stdout.partition("Commands")[2]
    assert [name for name in shown if f" {name}" not in commands] == []
    assert [name for name in absent if f"│ {name}" in commands] == []
    assert f"pip install 'storefleet[{other}]'" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("side", "argv", "message"),
    [
        pytest.param(
            "cloud",
            ("storefleet-appliance", "--help"),
            "storefleet-appliance needs the appliance (",
            id="storefleet-appliance-on-a-cloud-install",
        ),
        pytest.param(
            "appliance",
            ("storefleet-cloud", "serve"),
            "storefleet-cloud needs the control plane (",
            id="storefleet-cloud-on-an-appliance",
        ),
    ],
)
def test_the_other_sides_entry_point_refuses_with_the_extra_to_install(
    side: str, argv: tuple[str, ...], message: str
) -> None:
    result = one_sided.run(side, RUN_ENTRY_POINT, *argv)

    assert result.returncode == 2
    assert message in result.stderr
    other = "appliance" if side == "cloud" else "cloud"
    assert result.stderr.strip().endswith(f"pip install 'storefleet[{other}]'")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("side", "argv", "commands"),
    [
        pytest.param("cloud", ("storefleet-cloud", "--help"), ("serve", "operators"), id="cloud"),
        pytest.param(
            "appliance", ("storefleet-appliance", "--help"), ("register", "agent"), id="appliance"
        ),
    ],
)
def test_the_own_sides_entry_point_starts(
    side: str, argv: tuple[str, ...], commands: tuple[str, ...]
) -> None:
    result = one_sided.run(side, RUN_ENTRY_POINT, *argv)

    assert result.returncode == 0, result.stderr
    assert [name for name in commands if name not in result.stdout] == []


@pytest.mark.parametrize("side", ["cloud", "appliance"])
def test_the_demo_refuses_on_a_one_sided_install(side: str) -> None:
    result = one_sided.run(side, RUN_ENTRY_POINT, "storefleet", "demo")

    assert result.returncode == 2
    output = " ".join(result.stderr.replace("│", " ").split())
    assert "storefleet demo needs" in output
    assert "pip install 'storefleet[cloud,appliance]'" in output
    assert "Traceback" not in result.stderr
