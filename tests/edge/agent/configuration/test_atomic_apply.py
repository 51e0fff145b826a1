"""SIGKILL while the applied configuration is being written: afterwards the file is the old
document or the new one, whole — never a mix, never unreadable.

A child process writes versions 1, 2, 3 … as fast as it can, each with a footer naming its own
version; it is killed at some point of that loop, five times over; then what is on disk is read
back the way the register reads it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.agent.configuration.files import read_applied

ROOT = Path(__file__).resolve().parents[4]

WRITER = """
import sys
from pathlib import Path
from edge.agent.configuration.files import AppliedConfig, write_applied
from protocols.store_config import Receipt, parse_store_config
from tests.harness.store_config import store_config_doc

data_dir, start = Path(sys.argv[1]), int(sys.argv[2])
base = parse_store_config(store_config_doc())
print("writing", flush=True)
for version in range(start, start + 2000):
    doc = base.model_copy(update={"receipt": Receipt(footer=[f"v{version}"])})
    write_applied(data_dir, AppliedConfig.of(version, doc))
"""


@pytest.mark.parametrize(
    "kill_after_ms", [pytest.param(ms, id=f"{ms}ms") for ms in (5, 20, 50, 90, 150)]
)
def test_a_killed_write_leaves_a_whole_document(tmp_path: Path, kill_after_ms: int) -> None:
    start = 1 + kill_after_ms * 1000  # each run its own versions
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(start)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"writing\n"
    time.sleep(kill_after_ms / 1000)  # where in the loop the kill lands; nothing timed is asserted
    child.send_signal(signal.SIGKILL)
    child.wait(10)

    applied = read_applied(tmp_path)
    if applied is None:  # killed before the first rename: nothing applied, nothing half-written
        assert not (tmp_path / "config" / "applied.json").exists()
        return
    assert applied.config.receipt.footer == [f"v{applied.version}"]
    previous_file = tmp_path / "config" / "previous.json"
    if previous_file.exists():
        previous = json.loads(previous_file.read_text())
        assert previous["doc"]["receipt"]["footer"] == [f"v{previous['version']}"]
        assert previous["version"] in (applied.version - 1, applied.version)
