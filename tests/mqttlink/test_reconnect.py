"""The one reconnect loop: what it retries, what it reports, and when its backoff starts afresh.

Sessions here are coroutines that fail as a lost connection does (the broker side is exercised by
the callers' tests against Mosquitto); the backoff's sleep records each wait and ends the loop
after a set number, so the sequence of waits is the observable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiomqtt
import pytest

from mqttlink.backoff import Backoff
from mqttlink.reconnect import reconnect_forever, retry_forever


class EnoughWaitsError(Exception):
    """Raised by the recording sleep to end the loop after the waits a test wants."""


def ceiling(_low: float, high: float) -> float:
    return high


def recording_backoff(waits: list[float], *, stop_after: int) -> Backoff:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) >= stop_after:
            raise EnoughWaitsError

    return Backoff(initial=1.0, cap=60.0, uniform=ceiling, sleep=sleep)


@pytest.mark.parametrize(
    ("progress_by_session", "expected_waits"),
    [
        pytest.param([0, 0, 0, 0], [1.0, 2.0, 4.0, 8.0], id="no-progress-keeps-climbing"),
        pytest.param([0, 0, 5, 0], [1.0, 2.0, 1.0, 2.0], id="progress-starts-afresh"),
        pytest.param([3, 3, 3, 3], [1.0, 1.0, 1.0, 1.0], id="progress-every-time"),
    ],
)
async def test_a_session_that_made_progress_starts_the_backoff_afresh(
    progress_by_session: list[int], expected_waits: list[float]
) -> None:
    """The replicator's rule (records acked) and the serial/LLRP rule (a session got going)."""
    count = 0
    sessions = iter(progress_by_session)

    async def session() -> None:
        nonlocal count
        count += next(sessions)
        raise OSError("connection reset")

    waits: list[float] = []
    with pytest.raises(EnoughWaitsError):
        await retry_forever(
            session,
            backoff=recording_backoff(waits, stop_after=len(expected_waits)),
            retry_on=(OSError,),
            failed=lambda _err: None,
            progress=lambda: count,
        )
    assert waits == expected_waits


async def test_each_loss_is_counted_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    errors: list[Exception] = []
    forgotten = 0

    def lost() -> None:
        nonlocal forgotten
        forgotten += 1

    async def session(_backoff: Backoff) -> None:
        raise aiomqtt.MqttError("broker went away")

    log = logging.getLogger("tests.reconnect")
    caplog.set_level(logging.WARNING, logger=log.name)
    waits: list[float] = []
    with pytest.raises(EnoughWaitsError):
        await reconnect_forever(
            session,
            backoff=recording_backoff(waits, stop_after=3),
            log=log,
            what="device reg-1",
            url="mqtt://broker:1883",
            lost=lost,
            on_error=errors.append,
            meanwhile="sales continue offline",
        )
    assert [str(e) for e in errors] == ["broker went away"] * 3
    assert forgotten == 3
    assert [r.getMessage() for r in caplog.records] == [
        "device reg-1: broker mqtt://broker:1883 lost or unreachable (broker went away);"
        " retrying, sales continue offline"
    ] * 3


async def test_a_defect_is_not_retried_but_the_connection_is_still_forgotten() -> None:
    forgotten: list[bool] = []

    async def session(_backoff: Backoff) -> None:
        raise ZeroDivisionError("a bug, not a lost broker")

    with pytest.raises(ZeroDivisionError):
        await reconnect_forever(
            session,
            backoff=recording_backoff([], stop_after=1),
            log=logging.getLogger("tests.reconnect"),
            what="ingest",
            url="mqtt://broker:1883",
            lost=lambda: forgotten.append(True),
            on_error=lambda err: pytest.fail(f"a defect was counted as a loss: {err}"),
        )
    assert forgotten == [True]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(
            lambda: Backoff.capped(initial=0.2, cap=0.05), (0.05, 0.05, 0.0), id="initial-over-cap"
        ),
        pytest.param(
            lambda: Backoff.capped(initial=0.2, cap=10.0, healthy_s=30.0),
            (0.2, 10.0, 30.0),
            id="initial-under-cap",
        ),
    ],
)
def test_capped_takes_an_initial_above_the_cap_as_the_cap(
    make: Callable[[], Backoff], expected: tuple[float, float, float]
) -> None:
    backoff = make()
    assert (backoff.initial, backoff.cap, backoff.healthy_s) == expected
