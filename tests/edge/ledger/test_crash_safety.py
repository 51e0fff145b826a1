"""SIGKILL a process mid-stream of sales, again and again: every promised sale survives.

The child (``crash_child.py``) prints a sale id only after ``record_sale`` returned. The parent
kills it at a seeded random point, restarts it on the same file, and finally checks the file with
SQLite's integrity check, the hash chain, and the list of promised sale ids.
"""

import json
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.ledger import Ledger

CHILD = Path(__file__).with_name("crash_child.py")
ROUNDS = 6
SEED = 20261121


def _ring_until_killed(path: Path, seed: int, kill_after: int) -> tuple[int, list[str]]:
    """Run one child, SIGKILL it after ``kill_after`` commits.

    Returns the head seq the child found on opening and every sale id it printed, in order.
    """
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = child.stdout.readline()
    lines = [child.stdout.readline() for _ in range(kill_after)]
    child.send_signal(signal.SIGKILL)
    rest, errors = child.communicate()
    assert child.returncode == -signal.SIGKILL, errors
    assert ready.startswith("ready "), errors
    assert all(line.startswith("committed ") and line.endswith("\n") for line in lines), errors
    # Lines printed before the kill but not read yet are promises too; a line cut short is not.
    promised = [*lines, *(line for line in rest.splitlines(keepends=True) if line.endswith("\n"))]
    assert all(line.startswith("committed ") for line in promised), promised
    return int(ready.split()[1]), [line.removeprefix("committed ").strip() for line in promised]


@pytest.mark.slow
async def test_sigkill_never_loses_a_committed_sale(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    rng = random.Random(SEED)
    promised: list[str] = []
    heads_on_restart: list[tuple[int, int]] = []
    for round_no in range(ROUNDS):
        head, ids = _ring_until_killed(path, SEED + round_no, rng.randint(20, 400))
        heads_on_restart.append((head, len(promised)))
        promised += ids

    async with Ledger(path, register_id="crash-1") as ledger:
        integrity = await ledger.integrity_check()
        chain_length = await ledger.verify_chain()
        records = await ledger.read_records(1, chain_length + 1)
        sale_ids = await ledger.sale_ids()
        last_seq = ledger.last_seq

    conn = sqlite3.connect(path)
    receipts = [row[0] for row in conn.execute("SELECT receipt_no FROM sales ORDER BY receipt_no")]
    orphans = conn.execute(
        "SELECT count(*) FROM sales LEFT JOIN journal ON journal.seq = sales.journal_seq"
        " WHERE journal.seq IS NULL"
    ).fetchone()[0]
    conn.close()

    assert integrity == "ok"
    assert all(head >= before for head, before in heads_on_restart), heads_on_restart
    assert len(promised) >= ROUNDS * 20
    assert len(set(promised)) == len(promised)
    assert set(promised) <= sale_ids
    assert chain_length == last_seq == len(records) == len(sale_ids)
    assert [r.seq for r in records] == list(range(1, last_seq + 1))
    assert {json.loads(r.record)["body"]["sale_id"] for r in records} == sale_ids
    assert receipts == list(range(1, len(sale_ids) + 1))
    assert orphans == 0
