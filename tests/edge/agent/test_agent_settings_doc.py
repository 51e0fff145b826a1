"""Every option of the agent and the register in ``--help`` and on a reference page (issue 10).

Both are generated from the settings models (edge/settings_reference.py): the pages must be what
the models say today, and the help the processes print must name every variable and default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.agent import settings_doc as agent_doc
from edge.agent.settings import FleetAgentSettings
from edge.register import settings_doc as register_doc
from edge.settings_reference import SettingRow

ROOT = Path(__file__).resolve().parents[3]


def test_the_agent_reference_page_is_the_models() -> None:
    rows = list(agent_doc.rows())
    assert [row.key for row in rows] == list(FleetAgentSettings.model_fields)
    assert [row.key for row in rows if not row.description] == []
    page = (ROOT / "docs" / "agent-settings.md").read_text()
    assert page == agent_doc.markdown(), "regenerate: python -m edge.agent.settings_doc"


def help_text(*command: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLEET_")}
    done = subprocess.run(
        [sys.executable, "-m", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env | {"COLUMNS": "240", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    return " ".join(line.strip(" │") for line in done.stdout.splitlines())


@pytest.mark.parametrize(
    ("command", "rows"),
    [
        pytest.param(("edge.agent",), agent_doc.rows, id="python -m edge.agent"),
        pytest.param(("edge.cli", "agent"), agent_doc.rows, id="storefleet agent"),
        pytest.param(("edge.cli", "register"), register_doc.rows, id="storefleet register"),
    ],
)
def test_help_lists_every_option_with_its_variable_and_default(
    command: tuple[str, ...], rows: Callable[[], Iterator[SettingRow]]
) -> None:
    said = help_text(*command)
    missing = [
        row.key
        for row in rows()
        if f"{row.key} ({row.variable}, default {row.default.strip('`')}): " not in said
    ]
    assert missing == []
