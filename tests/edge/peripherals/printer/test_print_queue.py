"""The durable queue: jobs survive a restart, are due in order and back off."""

from pathlib import Path

from edge.peripherals.printer.queue import PrintQueue
from mqttlink.backoff import Backoff


def ceiling(_low: float, high: float) -> float:
    """The jitter that always draws the top of its range."""
    return high


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
        path=tmp_path / "q.db", backoff=Backoff(initial=2, cap=8, uniform=ceiling), clock=clock
    ) as queue:
        job_id = await queue.submit(kind="receipt", ref="000001", payload=b"x")
        delay = await queue.mark_failed(job_id, attempts=0, error="paper_out")
        assert delay == 2
        assert await queue.next_due() is None
        clock.now += delay
        job = await queue.next_due()
        assert job is not None
        assert (job.attempts, job.last_error) == (1, "paper_out")
        await queue.mark_printed(job_id)
        assert await queue.pending() == 0
        assert await queue.seconds_until_next() is None


async def test_a_job_backs_off_by_its_stored_attempts(tmp_path: Path) -> None:
    """The retry grows with the attempts kept in the job's row and stops at the cap."""
    clock = Clock()
    backoff = Backoff(initial=1, cap=10, uniform=ceiling)
    async with PrintQueue(path=tmp_path / "q.db", backoff=backoff, clock=clock) as queue:
        job_id = await queue.submit(kind="receipt", ref="000001", payload=b"x")
        delays = [await queue.mark_failed(job_id, attempts=n, error="offline") for n in range(6)]
    assert delays == [1, 2, 4, 8, 10, 10]
