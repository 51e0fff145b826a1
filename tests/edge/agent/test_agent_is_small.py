"""The fleet agent is small: it imports none of the register's machinery.

The agent must keep running (and roll a release back) when the register cannot start, so a
broken kiosk, ledger or driver package must not be able to stop it from importing. Checked in a
fresh interpreter that loads what ``storefleet agent`` loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

#: Packages the register needs and the agent must not load.
REGISTER_ONLY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "aiosqlite",
    "sqlite3",
    "escpos",
    "evdev",
    "serial",
    "PIL",
    "sqlalchemy",
    "asyncpg",
    "amqtt",
    "control_plane",
    "edge.register",
    "edge.ledger",
    "edge.replication",
    "edge.kiosk",
    "edge.peripherals",
    "edge.pos",
    "edge.checkout",
    "edge.stock",
)

PROBE = """
import json, sys
import edge.cli, edge.agent.__main__
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("package", REGISTER_ONLY)
def test_the_agent_does_not_import(package: str) -> None:
    loaded = agent_modules()
    assert [m for m in loaded if m == package or m.startswith(package + ".")] == []


_cache: list[str] = []


def agent_modules() -> list[str]:
    if not _cache:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True
        )
        _cache.extend(json.loads(done.stdout))
    return _cache
