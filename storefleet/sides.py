"""Which sides of storefleet this install has: the ``cloud`` and the ``appliance`` extras.

pip installs every console script whatever extras were asked for, so ``storefleet-appliance``
exists on a control-plane install too. Rather than failing with a ``ModuleNotFoundError`` deep
inside a command, each entry point asks here first and answers with the one command that fixes
it.

How it works: an extra's requirements are read from this distribution's own metadata (the
``Requires-Dist`` lines marked ``extra == "cloud"``), and each is looked up as an installed
distribution. A source checkout run without being installed has no metadata; then every side
counts as present (the imports will tell).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata

import typer

DISTRIBUTION = "storefleet"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True, slots=True)
class Side:
    """One half of the product: its extra, the module holding its typer ``app``, its name."""

    extra: str
    cli: str
    what: str

    def app(self) -> typer.Typer:
        """The side's command line (imported only when the side is installed)."""
        app: typer.Typer = importlib.import_module(self.cli).app
        return app


CLOUD = Side(extra="cloud", cli="control_plane.cli", what="the control plane")
APPLIANCE = Side(extra="appliance", cli="edge.cli", what="the appliance")
SIDES = (CLOUD, APPLIANCE)


@cache
def lacking(extra: str, *, distribution: str = DISTRIBUTION) -> tuple[str, ...]:
    """The requirements of ``distribution[extra]`` that are not installed, by project name."""
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return ()
    marker = re.compile(rf"""\bextra\s*==\s*["']{re.escape(extra)}["']""")
    missing: list[str] = []
    for requirement in requirements:
        spec, _, condition = requirement.partition(";")
        name = _NAME.match(spec)
        if name is None or not marker.search(condition):
            continue
        try:
            metadata.distribution(name.group(1))
        except metadata.PackageNotFoundError:
            missing.append(name.group(1))
    return tuple(missing)


def installed() -> list[Side]:
    """The sides whose every requirement is installed."""
    return [side for side in SIDES if not lacking(side.extra)]


def refusal(command: str, needs: tuple[Side, ...]) -> str | None:
    """One line saying what ``command`` needs that this install lacks, or None if nothing."""
    missing = [(side, lacking(side.extra)) for side in needs if lacking(side.extra)]
    if not missing:
        return None
    extras = ",".join(side.extra for side in needs)
    parts = "; ".join(f"{side.what} ({', '.join(names)} missing)" for side, names in missing)
    return f"{command} needs {parts}: install it with pip install 'storefleet[{extras}]'"
