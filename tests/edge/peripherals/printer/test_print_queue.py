"""The durable queue: jobs survive a restart, are due in order and back off."""

import random
from pathlib import Path

from edge.peripherals.printer.queue import Backoff, PrintQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_job_survives_a_restart(tmp_path: Path) -> None:
    async with PrintQueue(path=tmp_path / "q.db") as queue:
        job_id = await queue.submit(kind="receipt", ref="000001", payload=b"\x1b@hello")
    async with PrintQueue(path=tmp_path / "q.db") as queue:
        job = await queue.next_due()
        assert job is not None
        assert (job.id, job.payload, job.state) == (job_id, b"\x1b@hello", "queued")


async def test_failed_job_waits_for_its_backoff(tmp_path: Path) -> None:
    clock = Clock()
    async with PrintQueue(
        path=tmp_path / "q.db", backoff=Backoff(base_s=2, cap_s=8), clock=clock, seed=3
    ) as queue:
        job_id = await queue.submit(kind="receipt", ref="000001", payload=b"x")
        delay = await queue.mark_failed(job_id, attempts=0, error="paper_out")
        assert 1 <= delay <= 2
        assert await queue.next_due() is None
        clock.now += delay
        job = await queue.next_due()
        assert job is not None
        assert (job.attempts, job.last_error) == (1, "paper_out")
        await queue.mark_printed(job_id)
        assert await queue.pending() == 0
        assert await queue.seconds_until_next() is None


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(0)
    backoff = Backoff(base_s=1, cap_s=10)
    delays = [backoff.delay(n, rng) for n in range(8)]
    assert all(0.5 * min(2**n, 10) <= d <= min(2**n, 10) for n, d in enumerate(delays))
