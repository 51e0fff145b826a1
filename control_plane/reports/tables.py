"""The one shape every report has: a titled table of typed columns; JSON, CSV and HTML from it.

A cell of a ``money`` column is integer minor units (JSON carries the integer; CSV and the page
write it as an exact decimal string through :func:`money_text`, never through float), a
``count`` an integer, a ``quantity`` a Decimal written as its string, ``text`` a string and
``flag`` a boolean. Keeping every report in this shape is what lets each one export as CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ColumnKind = Literal["text", "money", "count", "quantity", "flag", "percent"]
Cell = str | int | bool | Decimal | None

#: Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    kind: ColumnKind = "text"


@dataclass(frozen=True, slots=True)
class Table:
    """A report table; ``exponent``: the currency's minor-unit digits for money cells."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    exponent: int = 2
    note: str = ""

    def column(self, key: str) -> list[Cell]:
        index = [c.key for c in self.columns].index(key)
        return [row[index] for row in self.rows]

    def as_json(self) -> dict[str, object]:
        """Money as integer minor units, quantities as decimal strings."""
        return {
            "name": self.name,
            "title": self.title,
            "note": self.note,
            "exponent": self.exponent,
            "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in self.columns],
            "rows": [
                {c.key: _json_cell(cell) for c, cell in zip(self.columns, row, strict=True)}
                for row in self.rows
            ],
        }

    def text_rows(self) -> list[list[str]]:
        """Every cell as a person reads it (the page and the CSV)."""
        return [
            [
                cell_text(cell, c.kind, self.exponent)
                for c, cell in zip(self.columns, row, strict=True)
            ]
            for row in self.rows
        ]

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([c.label for c in self.columns])
        for row in self.text_rows():
            writer.writerow([_defused(cell) for cell in row])
        return out.getvalue()


def money_text(minor: int, exponent: int = 2) -> str:
    """Minor units as an exact decimal string: 12345, 2 → ``"123.45"``; −5 → ``"-0.05"``."""
    if exponent == 0:
        return str(minor)
    return str(Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


def cell_text(cell: Cell, kind: ColumnKind, exponent: int) -> str:
    if cell is None:
        return ""
    if kind == "money" and isinstance(cell, int) and not isinstance(cell, bool):
        return money_text(cell, exponent)
    if kind == "flag":
        return "yes" if cell else ""
    if kind == "percent" and isinstance(cell, Decimal):
        return f"{cell:.1f}%"
    return str(cell)


def _json_cell(cell: Cell) -> str | int | bool | None:
    return str(cell) if isinstance(cell, Decimal) else cell


def _defused(text: str) -> str:
    """A text cell a spreadsheet would run as a formula, quoted; numbers pass as they are."""
    if text.startswith(_FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def table(
    name: str,
    title: str,
    columns: Sequence[tuple[str, str, ColumnKind]],
    *,
    exponent: int = 2,
    note: str = "",
) -> Table:
    """A table with columns given as ``(key, label, kind)``."""
    return Table(name, title, tuple(Column(*c) for c in columns), [], exponent, note)
