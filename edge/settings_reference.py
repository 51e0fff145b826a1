"""Settings models as a reference: rows of key, variable, type, default and meaning.

The register's and the fleet agent's ``--help`` and their reference pages under ``docs/`` are
generated from their pydantic settings models through this module, so an option cannot be added
without its variable, default and description showing in both, and a test can compare a page
with what the model says today. Pydantic only: the agent imports it and stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

#: Sections written ``[section]`` in a file are joined with this in a variable's name.
NESTED = "__"


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One setting: its key in the file, its variable, its type, default and description."""

    key: str
    variable: str
    type: str
    default: str
    description: str


def rows(
    model: type[BaseModel],
    *,
    env_prefix: str,
    leaf: Callable[[type[BaseModel]], bool] = lambda _model: False,
    describe_factory: Callable[[Any], str] = lambda _factory: "—",
    prefix: tuple[str, ...] = (),
) -> Iterator[SettingRow]:
    """Every setting of ``model``, sections expanded unless ``leaf`` says a section is one row."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        nested = _section(info.annotation)
        if nested is not None and not leaf(nested):
            yield from rows(
                nested,
                env_prefix=env_prefix,
                leaf=leaf,
                describe_factory=describe_factory,
                prefix=path,
            )
            continue
        default = (
            describe_factory(info.default_factory)
            if info.default_factory is not None
            else default_text(info.default)
        )
        yield SettingRow(
            key=".".join(path),
            variable=env_prefix + NESTED.join(path).upper(),
            type=type_name(info.annotation),
            default=default,
            description=info.description or "",
        )


def _section(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def type_name(annotation: Any) -> str:
    """A type as a reader of the page knows it: ``float``, ``Path or None``, ``text or json``."""
    if get_origin(annotation) is Literal:
        return " or ".join(str(choice) for choice in get_args(annotation))
    if get_origin(annotation) is tuple:  # a list in the file, JSON in a variable
        return f"list of {type_name(get_args(annotation)[0])}"
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")
    return text.replace(" | ", " or ")


def default_text(default: Any) -> str:
    """A default as it is written in the file (``unset`` for None)."""
    if default is PydanticUndefined:
        return "required in its section"
    if default is None:
        return "unset"
    if isinstance(default, tuple) and not default:
        return "`[]`"
    return f"`{default}`" if default != "" else '`""`'


def markdown_table(settings: Iterable[SettingRow]) -> list[str]:
    """The rows as a Markdown table."""
    lines = ["| key | variable | type | default | what |", "|---|---|---|---|---|"]
    lines += [
        f"| `{row.key}` | `{row.variable}` | {row.type.replace('|', 'or')} | {row.default} |"
        f" {row.description} |"
        for row in settings
    ]
    return lines


def help_lines(settings: Iterable[SettingRow]) -> list[str]:
    """One paragraph per setting for ``--help``: key, variable, default, meaning."""
    return [
        f"{row.key} ({row.variable}, default {row.default.strip('`')}): {row.description}"
        for row in settings
    ]
