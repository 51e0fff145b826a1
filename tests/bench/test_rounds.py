"""bench/rounds.py: the median and spread of several rounds, goals judged on the median."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.rounds import Goal, Rounds, add_rounds_argument


def rounds_of(values: list[float], goal: Goal | None = None) -> Rounds:
    rounds = Rounds("test", rounds=len(values))
    for value in values:
        rounds.add("lag", value, label="lag p99", unit="ms", goal=goal)
    return rounds


def test_one_wild_round_moves_neither_the_median_nor_the_verdict() -> None:
    """The issue's case: one noisy run cannot hide or fake a result."""
    rounds = rounds_of([12.0, 13.0, 95.0, 12.5, 11.0], Goal("<", 20))
    figure = rounds.figures["lag"]
    assert figure.median == 12.5
    assert (figure.low, figure.high) == (11.0, 95.0)
    assert figure.met is True
    assert figure.rounds_met == 4


def test_one_lucky_round_does_not_meet_a_goal() -> None:
    rounds = rounds_of([9_800.0, 12_000.0, 9_700.0], Goal(">=", 10_000))
    assert rounds.figures["lag"].met is False
    assert rounds.figures["lag"].rounds_met == 1


@pytest.mark.parametrize(
    ("goal", "value", "met"),
    [
        pytest.param(Goal("<", 20), 20.0, False, id="below-excludes-bound"),
        pytest.param(Goal("<=", 2), 2.0, True, id="at-most-includes-bound"),
        pytest.param(Goal(">=", 200), 200.0, True, id="at-least-includes-bound"),
        pytest.param(Goal(">", 0), 0.0, False, id="above-excludes-bound"),
    ],
)
def test_goal_bounds(goal: Goal, value: float, met: bool) -> None:
    assert goal.met(value) is met


def test_goal_refuses_an_unknown_comparison() -> None:
    with pytest.raises(ValueError, match="one of"):
        Goal("==", 1)  # type: ignore[arg-type]


def test_even_number_of_rounds_takes_the_middle_pair() -> None:
    assert rounds_of([1.0, 2.0, 4.0, 10.0]).figures["lag"].median == 3.0


def test_table_prints_median_spread_goal_and_verdict() -> None:
    rounds = rounds_of([29.6, 21.8, 25.0], Goal("<", 20))
    rounds.add("rate", 135, label="enrolments", unit="/s", goal=Goal(">=", 200), digits=0)
    rounds.add("rate", 155)
    rounds.add("rate", 210)
    table = rounds.table()
    assert "load average at start" in table
    [lag_row] = [line for line in table.splitlines() if "lag p99" in line]
    assert "25.0 ms" in lag_row
    assert "21.8–29.6" in lag_row
    assert "< 20 ms" in lag_row
    assert "NOT MET (0/3 rounds)" in lag_row
    [rate_row] = [line for line in table.splitlines() if "enrolments" in line]
    assert "155 /s" in rate_row
    assert ">= 200 /s" in rate_row


def test_json_holds_every_round_and_the_summary(tmp_path: Path) -> None:
    rounds = rounds_of([3.0, 1.0, 2.0], Goal("<=", 2))
    out = tmp_path / "results" / "x.json"
    rounds.write(out, detail={"per_round": [1, 2, 3]})
    written = json.loads(out.read_text())
    lag = written["figures"]["lag"]
    assert lag["rounds"] == [3.0, 1.0, 2.0]
    assert (lag["median"], lag["min"], lag["max"]) == (2.0, 1.0, 3.0)
    assert (lag["q1"], lag["q3"]) == (1.5, 2.5)
    assert lag["goal"] == "<= 2 ms"
    assert lag["met"] is True
    assert lag["rounds_met"] == 2
    assert written["rounds"] == 3
    assert len(written["load_average_at_start"]) == 3
    assert written["detail"] == {"per_round": [1, 2, 3]}


def test_a_figure_without_goal_has_no_verdict() -> None:
    rounds = rounds_of([1.0])
    assert rounds.figures["lag"].met is None
    assert rounds.figures["lag"].quartiles == (1.0, 1.0)
    assert rounds.rows()[0][3:] == ("", "")


def test_each_yields_every_round_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(Rounds("bench", rounds=3).each()) == [1, 2, 3]
    assert "bench: round 3/3" in capsys.readouterr().out


@pytest.mark.parametrize("given", ["0", "-2", "five", "1.5"])
def test_rounds_argument_refuses_what_is_not_a_positive_count(given: str) -> None:
    parser = argparse.ArgumentParser()
    add_rounds_argument(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--rounds", given])


def test_rounds_argument_defaults_to_five() -> None:
    parser = argparse.ArgumentParser()
    add_rounds_argument(parser)
    assert parser.parse_args([]).rounds == 5
    assert parser.parse_args(["--rounds", "3"]).rounds == 3


def test_rounds_refuses_zero() -> None:
    with pytest.raises(ValueError, match="at least one round"):
        Rounds("x", rounds=0)


def test_each_prints_what_a_round_measured(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = Rounds("bench", rounds=2)
    for number in rounds.each():
        rounds.add("rate", 100 * number, label="enrolments", unit="/s", digits=0)
    out = capsys.readouterr().out
    assert "round 1: enrolments 100 /s" in out
    assert "round 2: enrolments 200 /s" in out
