"""The one reconnect-with-backoff: full jitter under a doubling ceiling, a cap, afresh when healthy.

Randomness, sleep and clock are injected: ``uniform`` returns its upper bound, so each delay is the
ceiling it was drawn under, and the clock is a number the test moves.
"""

from __future__ import annotations

import pytest

from mqttlink.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ceiling(low: float, high: float) -> float:
    """``uniform`` stand-in: the top of the range, so a delay shows its ceiling."""
    assert low == 0.0  # full jitter: every draw starts at zero
    return high


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=5.0, uniform=ceiling)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_each_delay_is_drawn_from_zero_to_the_ceiling() -> None:
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return (low + high) / 2

    backoff = Backoff(initial=1.0, cap=8.0, uniform=uniform)
    assert [backoff.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]
    assert drawn == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0)]


def test_a_connection_that_stayed_up_long_enough_starts_afresh() -> None:
    clock = Clock()
    backoff = Backoff(initial=1.0, cap=60.0, healthy_s=30.0, uniform=ceiling, clock=clock)
    for _ in range(4):
        backoff.next_delay()
    backoff.up()
    clock.now += 30.0
    assert backoff.next_delay() == 1.0


def test_a_connection_that_dropped_at_once_keeps_climbing() -> None:
    """A broker that accepts and then drops is not hammered at the initial delay."""
    clock = Clock()
    backoff = Backoff(initial=1.0, cap=60.0, healthy_s=30.0, uniform=ceiling, clock=clock)
    assert [backoff.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.up()
    clock.now += 29.9
    assert backoff.next_delay() == 8.0
    # the short connection is forgotten: a later wait without a new up() keeps climbing
    clock.now += 100.0
    assert backoff.next_delay() == 16.0


def test_healthy_zero_means_any_connection_starts_afresh() -> None:
    backoff = Backoff(initial=1.0, cap=60.0, uniform=ceiling, clock=Clock())
    backoff.next_delay()
    backoff.next_delay()
    backoff.up()
    assert backoff.next_delay() == 1.0


def test_reset_starts_afresh() -> None:
    backoff = Backoff(initial=1.0, cap=60.0, uniform=ceiling)
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_a_long_outage_stays_at_the_cap_without_overflow() -> None:
    backoff = Backoff(initial=0.1, cap=30.0, uniform=ceiling)
    delays = {backoff.next_delay() for _ in range(5000)}
    assert max(delays) == 30.0
    assert backoff.next_delay() == 30.0


async def test_sleep_next_sleeps_the_drawn_delay() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    backoff = Backoff(initial=0.25, cap=1.0, uniform=ceiling, sleep=sleep)
    returned = [await backoff.sleep_next() for _ in range(4)]
    assert slept == returned == [0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    ("initial", "cap", "healthy_s"),
    [(0.0, 1.0, 0.0), (-1.0, 1.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, -1.0)],
)
def test_nonsense_settings_are_refused(initial: float, cap: float, healthy_s: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial=initial, cap=cap, healthy_s=healthy_s)
