"""Bad settings stop the register (and the agent) at start: one framed message naming the setting.

Each case starts the real command (``python -m edge.cli register|agent``) with a clean environment
and reads what an operator would read: exit code 2, one error frame, the setting's name and what
to set, no traceback, nothing opened (no ledger written).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.pos.store_config import DEMO_CATALOG, DEMO_STORE
from edge.register import settings_doc
from edge.register.settings import RegisterSettings
from tests.harness.services import free_port

ROOT = Path(__file__).resolve().parents[3]


#: How each process is started: the CLI (a framed message) and the service's entry point.
REGISTER = ("edge.cli", "register")
AGENT_CLI = ("edge.cli", "agent")
AGENT_SERVICE = ("edge.agent",)


def run(
    command: tuple[str, ...], settings: dict[str, object], tmp_path: Path, **env: str
) -> tuple[int, str]:
    """Start ``command`` with ``settings`` as its file; its exit code and everything it said."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
    clean |= {"PYTHONPATH": str(ROOT), "COLUMNS": "200", **env}
    done = subprocess.run(
        [sys.executable, "-m", *command, "--settings", str(path)],
        capture_output=True,
        text=True,
        env=clean,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def selling(tmp_path: Path, **more: object) -> dict[str, object]:
    """Settings that would start a selling register, plus ``more``."""
    return {
        "device_id": "reg-settings",
        "data_dir": str(tmp_path / "data"),
        "store_file": str(DEMO_STORE),
        "catalog": {"file": str(DEMO_CATALOG)},
        **more,
    }


@pytest.mark.parametrize(
    ("settings", "env", "named"),
    [
        pytest.param(
            {"kiosk": {"prot": 8081}},
            {},
            ["kiosk.prot: unknown setting", "kiosk.port"],
            id="unknown-key",
        ),
        pytest.param(
            {},
            {"STOREFLEET_EDGE_KIOSK_PORT": "8081"},
            ["STOREFLEET_EDGE_KIOSK_PORT: unknown setting", "STOREFLEET_EDGE_KIOSK__PORT"],
            id="unknown-variable",
        ),
        pytest.param(
            {},
            {"STOREFLEET_EDGE_LEDGER_PATH": "/tmp/ledger.db"},
            ["STOREFLEET_EDGE_LEDGER_PATH: not a register setting", "STOREFLEET_EDGE_DATA_DIR"],
            id="bench-appliance-variable",
        ),
        pytest.param(
            {"currency": "CHF"},
            {},
            ["currency: not a register setting", "store document", "STOREFLEET_EDGE_STORE_FILE"],
            id="bench-appliance-key",
        ),
        pytest.param(
            {"kiosk": {"port": "eighty"}},
            {},
            ["kiosk.port (STOREFLEET_EDGE_KIOSK__PORT)", "'eighty'", "valid integer"],
            id="wrong-type",
        ),
        pytest.param(
            {"device_id": ""},
            {},
            ["missing identity", "STOREFLEET_EDGE_IDENTITY_DIR", "STOREFLEET_EDGE_DEVICE_ID"],
            id="missing-identity",
        ),
        pytest.param(
            {"catalog": {"file": None}, "tenant_id": "t1", "control_plane_url": "unreachable"},
            {},
            ["control_plane_url (STOREFLEET_EDGE_CONTROL_PLANE_URL)", "cannot be reached"],
            id="unreachable-control-plane",
        ),
        pytest.param(
            {"store_file": None},
            {},
            ["store_file (STOREFLEET_EDGE_STORE_FILE)", "store.json does not exist"],
            id="production-start-without-a-store",  # never the demo store in its place
        ),
    ],
)
def test_register_refuses_bad_settings(
    tmp_path: Path, settings: dict[str, object], env: dict[str, str], named: list[str]
) -> None:
    given = selling(tmp_path, **settings)
    if given.get("control_plane_url") == "unreachable":
        given["control_plane_url"] = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    code, said = run(REGISTER, given, tmp_path, **env)
    assert code == 2, said
    assert said.count("Error") == 1, said  # one framed message
    flat = " ".join(line.strip("│ ") for line in said.splitlines())
    for words in named:
        assert words in flat, said
    assert "Traceback" not in said
    assert not (tmp_path / "data" / "ledger.db").exists()  # refused before anything opened


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param(
            {"device_id": "reg-a", "heartbeat_timeout": 3},
            ["heartbeat_timeout: unknown setting", "heartbeat_timeout_s"],
            id="unknown-key",
        ),
        pytest.param(
            {"device_id": "reg-a", "crash_loop_after": "often"},
            ["crash_loop_after (STOREFLEET_AGENT_CRASH_LOOP_AFTER)", "'often'"],
            id="wrong-type",
        ),
        pytest.param(
            {},
            ["identity: set exactly one of", "STOREFLEET_AGENT_IDENTITY_DIR"],
            id="missing-identity",
        ),
    ],
)
@pytest.mark.parametrize(
    ("command", "one_message"),
    [
        pytest.param(AGENT_CLI, "Error", id="storefleet-agent"),
        pytest.param(AGENT_SERVICE, "refused:", id="python-m-edge.agent"),
    ],
)
def test_agent_refuses_bad_settings(
    tmp_path: Path,
    settings: dict[str, object],
    named: list[str],
    command: tuple[str, ...],
    one_message: str,
) -> None:
    code, said = run(command, {"data_dir": str(tmp_path / "data"), **settings}, tmp_path)
    assert code == 2, said
    assert said.count(one_message) == 1, said
    flat = " ".join(line.strip("│ ") for line in said.splitlines())
    for words in named:
        assert words in flat, said
    assert "Traceback" not in said
    assert not (tmp_path / "data").exists()  # refused before the agent started anything


def test_every_setting_is_described_in_help_and_reference() -> None:
    rows = list(settings_doc.rows())
    assert {row.key.split(".")[0] for row in rows} == set(RegisterSettings.model_fields)
    assert [row.key for row in rows if not row.description] == []
    page = (ROOT / "docs" / "register-settings.md").read_text()
    assert page == settings_doc.markdown(), "regenerate: python -m edge.register.settings_doc"
    epilog = settings_doc.help_epilog()
    assert all(row.variable in epilog for row in rows)
