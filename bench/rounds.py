"""Rounds: every benchmark figure is measured several times and reported as median and spread.

Why: one run on a shared machine can be slowed by a neighbour (a goal looks missed) or catch a
quiet moment (a goal looks met). A figure measured in several rounds, reported as the median of
the rounds with their spread beside it, cannot be faked or hidden by one noisy run, and a wide
spread says at once that the machine was not quiet.

How it works
- A script parses ``--rounds`` (``add_rounds_argument``, default 5) and makes one ``Rounds``.
- It measures every figure once per round (``for n in rounds.each(): ...``) and hands each
  value to ``rounds.add(key, value, label=..., unit=..., goal=...)``; the first ``add`` of a key
  declares how it is printed, later ones only append.
- ``rounds.table()`` prints one row per figure: the median, the spread (min-max over the rounds),
  the goal and whether the median meets it, with how many single rounds met it.
- ``rounds.write(path, ...)`` writes every round's value, the median, min, max, quartiles, goal
  and verdict of each figure, the load average at the start and at the end (other processes on
  the machine show there), and whatever detail the script adds.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_ROUNDS = 5

Comparison = Literal["<", "<=", ">", ">="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Goal:
    """What a figure's median must satisfy, e.g. ``Goal("<", 20)`` for "below 20 ms"."""

    comparison: Comparison
    bound: float

    def __post_init__(self) -> None:
        if self.comparison not in _COMPARE:
            msg = f"a goal compares with one of {', '.join(_COMPARE)}, not {self.comparison!r}"
            raise ValueError(msg)

    def met(self, value: float) -> bool:
        """Whether `value` satisfies the goal."""
        return _COMPARE[self.comparison](value, self.bound)

    def text(self, unit: str) -> str:
        """The goal as printed: ``< 20 ms``, ``>= 10,000 /s``."""
        bound = f"{self.bound:,.0f}" if self.bound == int(self.bound) else f"{self.bound:,}"
        return f"{self.comparison} {bound}{' ' + unit if unit else ''}"


@dataclass(slots=True)
class Figure:
    """One measured quantity and its value in each round."""

    label: str
    unit: str = ""
    goal: Goal | None = None
    digits: int = 1
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The reported value: half the rounds were at or below it, half at or above."""
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        """The smallest value over the rounds."""
        return min(self.values)

    @property
    def high(self) -> float:
        """The largest value over the rounds."""
        return max(self.values)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartile (inclusive method; both the value itself for one round)."""
        if len(self.values) < 2:
            return self.values[0], self.values[0]
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3

    @property
    def met(self) -> bool | None:
        """Whether the median meets the goal; None when the figure has no goal."""
        return None if self.goal is None else self.goal.met(self.median)

    @property
    def rounds_met(self) -> int | None:
        """How many single rounds met the goal; None when the figure has no goal."""
        goal = self.goal
        return None if goal is None else sum(goal.met(v) for v in self.values)

    def number(self, value: float) -> str:
        """`value` with this figure's decimals and thousands separators."""
        return f"{value:,.{self.digits}f}"

    def as_json(self) -> dict[str, Any]:
        """Every round's value and the summary of them."""
        q1, q3 = self.quartiles
        return {
            "label": self.label,
            "unit": self.unit,
            "rounds": list(self.values),
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "q1": q1,
            "q3": q3,
            "goal": None if self.goal is None else self.goal.text(self.unit),
            "met": self.met,
            "rounds_met": self.rounds_met,
        }


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages (zeros where the platform has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


class Rounds:
    """The figures of one benchmark script, each measured once per round."""

    def __init__(self, title: str, *, rounds: int = DEFAULT_ROUNDS) -> None:
        if rounds < 1:
            msg = f"a benchmark runs at least one round, not {rounds}"
            raise ValueError(msg)
        self.title = title
        self.rounds = rounds
        self.figures: dict[str, Figure] = {}
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.load_at_start = load_average()

    def each(self) -> Iterator[int]:
        """Round numbers 1..N, announcing each so a long benchmark shows progress."""
        for number in range(1, self.rounds + 1):
            print(f"{self.title}: round {number}/{self.rounds}", flush=True)
            before = {key: len(figure.values) for key, figure in self.figures.items()}
            yield number
            measured = [
                f"{figure.label.strip()} {figure.number(figure.values[-1])}"
                f"{' ' + figure.unit if figure.unit else ''}"
                for key, figure in self.figures.items()
                if len(figure.values) > before.get(key, 0)
            ]
            if measured:  # as it comes, so a run that fails later still shows what it saw
                print(f"  round {number}: {'; '.join(measured)}", flush=True)

    def add(
        self,
        key: str,
        value: float,
        *,
        label: str | None = None,
        unit: str = "",
        goal: Goal | None = None,
        digits: int = 1,
    ) -> None:
        """Record one round's `value` of figure `key` (declared by its first add)."""
        figure = self.figures.get(key)
        if figure is None:
            figure = Figure(label=label or key, unit=unit, goal=goal, digits=digits)
            self.figures[key] = figure
        figure.values.append(float(value))

    def median(self, key: str) -> float:
        """The median of figure `key` over the rounds so far."""
        return self.figures[key].median

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(figure, median, spread, goal, verdict) per figure, as printed."""
        rows = []
        for figure in self.figures.values():
            unit = f" {figure.unit}" if figure.unit else ""
            spread = f"{figure.number(figure.low)}–{figure.number(figure.high)}"
            if figure.goal is None:
                goal, verdict = "", ""
            else:
                goal = figure.goal.text(figure.unit)
                verdict = (
                    f"{'met' if figure.met else 'NOT MET'} "
                    f"({figure.rounds_met}/{len(figure.values)} rounds)"
                )
            rows.append((figure.label, figure.number(figure.median) + unit, spread, goal, verdict))
        return rows

    def table(self) -> str:
        """The figures as a table: median, spread over the rounds, goal, met or not."""
        header = ("figure", f"median of {self.rounds}", "rounds min–max", "goal", "")
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        load_now = load_average()
        lines = [
            f"{self.title} — {platform.node()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            f"load average at start {_load(self.load_at_start)}, at end {_load(load_now)}",
        ]
        for name, median, spread, goal, verdict in rows:
            lines.append(
                f"  {name:<{widths[0]}}  {median:>{widths[1]}}  {spread:>{widths[2]}}  "
                f"{goal:<{widths[3]}}  {verdict}".rstrip()
            )
        return "\n".join(lines)

    def as_json(self, **details: Any) -> dict[str, Any]:
        """Everything measured: each figure's rounds and summary, the machine and its load."""
        return {
            "benchmark": self.title,
            "machine": f"{platform.node()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "started": self.started,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "rounds": self.rounds,
            "load_average_at_start": list(self.load_at_start),
            "load_average_at_end": list(load_average()),
            "figures": {key: figure.as_json() for key, figure in self.figures.items()},
            **details,
        }

    def write(self, path: Path, **details: Any) -> None:
        """Write `as_json` to `path` (creating its folder) and say where."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(**details), indent=2, default=str) + "\n")
        print(f"wrote {path}")


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def add_rounds_argument(parser: argparse.ArgumentParser) -> None:
    """``--rounds N``: how many times each figure is measured (its median is reported)."""
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=DEFAULT_ROUNDS,
        help=f"measure each figure N times and report the median and spread "
        f"(default {DEFAULT_ROUNDS})",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"--rounds takes a whole number of at least 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
