"""The rollout's rules without any service: waves, gates and windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from control_plane.rollouts.model import (
    RolloutIn,
    WaveIn,
    assign_waves,
    halt_reason,
    in_window,
    tally,
    wave_passed,
)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def test_waves_take_a_canary_then_cumulative_shares_and_the_last_takes_the_rest() -> None:
    devices = [f"d{n:03}" for n in range(200)]
    waves = [WaveIn(devices=1), WaveIn(percent=5), WaveIn(percent=25), WaveIn(percent=100)]
    numbers = assign_waves(devices, waves)
    assert [numbers.count(w) for w in range(4)] == [1, 9, 40, 150]
    assert numbers == sorted(numbers)  # in the devices' order
    # a last wave that is not 100 % still takes every device left
    assert assign_waves(["a", "b", "c"], [WaveIn(devices=1), WaveIn(percent=10)]) == [0, 1, 1]
    assert assign_waves(["a"], waves) == [0]  # fewer devices than waves: the rest are empty


def test_a_wave_halts_on_an_absolute_count_or_a_share_of_those_that_finished() -> None:
    canary = WaveIn(devices=1)
    assert halt_reason(canary, tally(["reverted"])) is not None  # a revert is a failure
    assert halt_reason(canary, tally(["timed_out"])) is not None
    share = WaveIn(percent=100, failure_percent=20, min_executed=5)
    four_finished = tally(["failed", "succeeded", "succeeded", "succeeded", "installing"] * 2)
    assert four_finished.executed == 8
    assert halt_reason(share, four_finished) is not None  # 2 of 8 = 25 % >= 20 %
    too_few = tally(["failed", "pending", "pending", "pending", "installing"])
    assert halt_reason(share, too_few) is None  # 1 finished: under min_executed
    counted = WaveIn(percent=100, failure_percent=100, max_failures=3)
    assert halt_reason(counted, tally(["failed"] * 2 + ["succeeded"] * 50)) is None
    assert halt_reason(counted, tally(["failed"] * 3 + ["succeeded"] * 50)) is not None


def test_a_wave_passes_on_its_success_share() -> None:
    wave = WaveIn(percent=100, success_percent=90)
    assert not wave_passed(wave, tally(["succeeded"] * 8 + ["pending"] * 2))
    assert wave_passed(wave, tally(["succeeded"] * 9 + ["pending"]))


@pytest.mark.parametrize(
    ("window", "zone", "at", "inside"),
    [
        ("22:00-06:00", "Europe/Zurich", "2026-12-06T22:30:00+01:00", True),
        ("22:00-06:00", "Europe/Zurich", "2026-12-07T05:59:00+01:00", True),
        ("22:00-06:00", "Europe/Zurich", "2026-12-07T06:00:00+01:00", False),
        ("22:00-06:00", "Europe/Zurich", "2026-12-06T22:30:00+00:00", True),  # 23:30 there
        ("02:00-04:00", "America/New_York", "2026-12-06T08:00:00+00:00", True),  # 03:00 there
        ("02:00-04:00", "America/New_York", "2026-12-06T03:00:00+00:00", False),
    ],
)
def test_windows_are_daily_in_the_store_time_zone(
    window: str, zone: str, at: str, inside: bool
) -> None:
    assert in_window(window, zone, _ms(at)) is inside


def test_a_rollout_spec_refuses_what_cannot_run() -> None:
    with pytest.raises(ValidationError, match="either devices"):
        WaveIn(devices=1, percent=5)
    with pytest.raises(ValidationError, match="no deadline for pending"):
        RolloutIn(release="1.0", deadlines={"pending": 5})
    with pytest.raises(ValidationError, match="needs at least one value"):
        RolloutIn(release="1.0", target={"kind": "tags"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RolloutIn(release="1.0", maintenance_window="25:00-03:00")


def test_a_release_with_a_nul_character_is_refused_before_the_store() -> None:
    """Found by the OpenAPI fuzz: PostgreSQL cannot store NUL, so the route answered 500."""
    from pydantic import ValidationError

    from control_plane.rollouts.model import RolloutIn

    with pytest.raises(ValidationError, match="release"):
        RolloutIn.model_validate({"release": "1.0\x00", "waves": [{"count": 1}]})
