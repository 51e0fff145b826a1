"""Run Python code as a one-sided install (`storefleet[cloud]` or `[appliance]`) would see it.

How it works: building a throw-away venv per side is slow, so this works from the full test venv.
From storefleet's own metadata it computes which installed distributions the side's install would
have (the base requirements plus the extra's, followed through every dependency's own
requirements and markers). A child interpreter then starts with two hooks at the front of
``sys.meta_path``: one refuses to import any top-level module that only the other distributions
provide, and the other side's first-party package (``edge`` for the cloud, ``control_plane`` for
the appliance); the other hides those distributions from :mod:`importlib.metadata`, so code
that asks which extras are installed sees what a one-sided install would show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: the other side's first-party package, refused outright
OTHER_SIDE = {"cloud": "edge", "appliance": "control_plane"}
#: what every venv has (``python -m venv``): never hidden
VENV = {"pip", "setuptools", "wheel"}


def _wanted(marker: Marker | None, extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({"extra": extra}) for extra in extras | {""})


def closure(distribution: str, extras: set[str]) -> set[str]:
    """Canonical names of the installed distributions that ``distribution[extras]`` pulls in."""
    seen: set[str] = set()
    followed: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, frozenset[str]]] = [(distribution, frozenset(extras))]
    while pending:
        name, wanted_extras = pending.pop()
        key = canonicalize_name(name)
        if (key, wanted_extras) in followed:
            continue
        followed.add((key, wanted_extras))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (a marker for another platform): nothing to follow
        seen.add(key)
        for line in requires:
            requirement = Requirement(line)
            if _wanted(requirement.marker, set(wanted_extras)):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


def hidden_for(side: str) -> tuple[set[str], set[str]]:
    """(distributions, top-level modules) that a ``storefleet[side]`` install would not have."""
    keep = closure("storefleet", {side}) | VENV
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    hidden = installed - keep
    modules = {
        module
        for module, owners in metadata.packages_distributions().items()
        if all(canonicalize_name(owner) in hidden for owner in owners)
    }
    return hidden, modules | {OTHER_SIDE[side]}


BOOTSTRAP = """
import importlib.abc, importlib.machinery, importlib.metadata, json, os, re, sys
_hidden = json.loads(os.environ.pop("ONE_SIDED_HIDDEN"))
_dists, _modules = set(_hidden["distributions"]), set(_hidden["modules"])

def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in _modules:
            raise ModuleNotFoundError(
                f"{fullname} is not installed on this side", name=fullname
            )
        return None

class _Hide(importlib.machinery.PathFinder):
    @classmethod
    def find_distributions(cls, context=importlib.metadata.DistributionFinder.Context()):
        for found in super().find_distributions(context):
            if _canonical(found.metadata["Name"] or "") not in _dists:
                yield found

sys.meta_path[:] = [
    _Hide if finder is importlib.machinery.PathFinder else finder for finder in sys.meta_path
]
sys.meta_path.insert(0, _Refuse())
"""


def run(side: str, code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (with ``sys.argv[1:] == argv``) in a child that has only ``side`` installed."""
    distributions, modules = hidden_for(side)
    env = {
        **os.environ,
        "ONE_SIDED_HIDDEN": json.dumps(
            {"distributions": sorted(distributions), "modules": sorted(modules)}
        ),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    return subprocess.run(
        [sys.executable, "-c", BOOTSTRAP + "\n" + code, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
