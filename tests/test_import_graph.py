"""The first-party import graph, read from the source: no circles; the two sides stay apart.

How it works: every ``.py`` file of every first-party package (the ``include`` patterns of
``[tool.setuptools.packages.find]`` in ``pyproject.toml``) is parsed with :mod:`ast`, and every
``import`` / ``from … import`` anywhere in it — at the top, inside a function, under
``if TYPE_CHECKING:`` — becomes an edge to the first-party module it names. An import inside a
function or a type-checking block hides a circle from the interpreter but not from this graph, so
the only way to pass is to remove the circle (STYLE.md: move the shared piece). Circles are the
graph's strongly connected components with more than one module (Tarjan); each is reported with
the file and line of every edge in it. Implicit imports of parent packages are not edges: a
package's ``__init__`` re-exporting its submodules is not a circle.

The sides: the cloud (``control_plane``) and the appliance (``edge``) install and start apart, so
neither imports the other, directly or through a shared package; the shared packages
(``protocols``, ``provisioning``, ``mqttlink``) import neither; and only ``storefleet``, the
product's composition of both (its command line and the demo), imports both, while nothing
imports it.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: module name -> {imported first-party module: (file, line) of the first import of it}
Graph = Mapping[str, Mapping[str, tuple[Path, int]]]


@dataclass(frozen=True, slots=True)
class Source:
    """One module of the tree: its dotted name, its file, and whether it is a package."""

    name: str
    path: Path
    is_package: bool


def first_party_packages(root: Path) -> list[str]:
    """Top-level packages that ``pyproject.toml`` ships (``packages.find`` include patterns)."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        d.name
        for d in root.iterdir()
        if (d / "__init__.py").is_file() and any(fnmatch.fnmatch(d.name, p) for p in patterns)
    )


def sources(root: Path, packages: Iterable[str]) -> dict[str, Source]:
    """Every module under ``packages``, by dotted name."""
    found: dict[str, Source] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            found[name] = Source(name, path, is_package)
    return found


def _resolve(name: str, known: Mapping[str, Source]) -> str | None:
    """The longest known module that ``name`` is or lies inside (``a.b.attr`` -> ``a.b``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, source: Source) -> list[str]:
    """The dotted names one import statement may load: modules, or attributes of them."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = source.name.split(".") if source.is_package else source.name.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    # ``from pkg import sub`` loads the submodule ``pkg.sub``; ``from mod import name`` resolves
    # back to ``mod`` (the longest known prefix)
    return [f"{module}.{alias.name}" for alias in node.names]


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, dict[str, tuple[Path, int]]]:
    """Each module's first-party imports, wherever in the file they are written."""
    known = sources(root, packages)
    graph: dict[str, dict[str, tuple[Path, int]]] = {}
    for name, source in known.items():
        edges: dict[str, tuple[Path, int]] = {}
        tree = ast.parse(source.path.read_text(encoding="utf-8"), filename=str(source.path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, source):
                module = _resolve(target, known)
                if module is not None and module != name:
                    edges.setdefault(module, (source.path.relative_to(root), node.lineno))
        graph[name] = edges
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def describe(graph: Graph, component: Iterable[str]) -> str:
    """The edges inside one circle, with where each import is written."""
    members = set(component)
    return "\n".join(
        f"  {module} -> {target}  ({path}:{line})"
        for module in sorted(members)
        for target, (path, line) in sorted(graph[module].items())
        if target in members
    )


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def crossings(graph: Graph, *, importer: str, imported: str) -> list[str]:
    """Every way package ``importer`` loads package ``imported``, directly or through others.

    Each entry is one import into ``imported`` (with where it is written), preceded by the
    shortest chain from an ``importer`` module to the module that writes it.
    """
    chain: dict[str, list[str]] = {m: [m] for m in sorted(graph) if _inside(m, importer)}
    queue = list(chain)
    found: list[str] = []
    while queue:
        module = queue.pop(0)
        for target, (path, line) in sorted(graph[module].items()):
            if _inside(target, imported):
                found.append(" -> ".join([*chain[module], target]) + f"  ({path}:{line})")
            elif target not in chain:
                chain[target] = [*chain[module], target]
                queue.append(target)
    return found


# -- the tree itself -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, tuple[Path, int]]]:
    return import_graph(ROOT, first_party_packages(ROOT))


def test_every_first_party_package_is_read() -> None:
    """Guards the scan: a package missing here would make the other checks pass vacuously."""
    assert first_party_packages(ROOT) == [
        "control_plane",
        "edge",
        "mqttlink",
        "protocols",
        "provisioning",
        "storefleet",
    ]


def test_the_import_graph_has_no_circle(graph: Graph) -> None:
    found = circles(graph)
    assert not found, "import circles (move the shared piece to its own module):\n" + "\n".join(
        describe(graph, component) for component in found
    )


#: (importer, imported): packages that must never load the other, directly or through others
APART = [
    pytest.param("control_plane", "edge", id="the-cloud-never-imports-the-appliance"),
    pytest.param("edge", "control_plane", id="the-appliance-never-imports-the-cloud"),
    *(
        pytest.param(shared, side, id=f"shared-{shared}-never-imports-{side}")
        for shared in ("protocols", "provisioning", "mqttlink")
        for side in ("control_plane", "edge")
    ),
    *(
        pytest.param(package, "storefleet", id=f"nothing-in-{package}-imports-the-composition")
        for package in ("control_plane", "edge", "protocols", "provisioning", "mqttlink")
    ),
]


@pytest.mark.parametrize(("importer", "imported"), APART)
def test_the_sides_stay_apart(graph: Graph, importer: str, imported: str) -> None:
    found = crossings(graph, importer=importer, imported=imported)
    assert not found, f"{importer} imports {imported}:\n" + "\n".join(found)


def test_the_composition_is_where_both_sides_meet(graph: Graph) -> None:
    """Guards APART: the composition does load both, so the crossings above can be seen."""
    assert crossings(graph, importer="storefleet", imported="control_plane")
    assert crossings(graph, importer="storefleet", imported="edge")


# -- the checks can fail: small trees with the circles this graph must see -----------------------


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


HIDDEN_CIRCLES = [
    pytest.param(
        {
            "pkg/a.py": "from pkg.b import B\n",
            "pkg/b.py": "def late():\n    from pkg.a import A\n    return A\n",
        },
        [["pkg.a", "pkg.b"]],
        id="import-inside-a-function",
    ),
    pytest.param(
        {
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n"
            ),
        },
        [["pkg.a", "pkg.b"]],
        id="type-checking-block",
    ),
    pytest.param(
        {
            "pkg/sub/__init__.py": "from . import a\n",
            "pkg/sub/a.py": "from .b import B\n",
            "pkg/sub/b.py": "from ..sub import a\n",
        },
        [["pkg.sub.a", "pkg.sub.b"]],
        id="relative-imports",
    ),
    pytest.param(
        {
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "from pkg import c\n",
            "pkg/c.py": "def late():\n    import pkg.a\n",
        },
        [["pkg.a", "pkg.b", "pkg.c"]],
        id="three-modules-through-from-package-import",
    ),
    pytest.param(
        {
            "pkg/__init__.py": "from pkg.a import A\n",
            "pkg/a.py": "from pkg.b import B\nA = B\n",
            "pkg/b.py": "B = 1\n",
        },
        [],
        id="a-package-re-exporting-its-modules-is-not-a-circle",
    ),
]


@pytest.mark.parametrize(("files", "expected"), HIDDEN_CIRCLES)
def test_circles_are_found_however_the_import_is_written(
    tmp_path: Path, files: Mapping[str, str], expected: list[list[str]]
) -> None:
    write_tree(tmp_path, {"pkg/__init__.py": "", **files})
    assert circles(import_graph(tmp_path, ["pkg"])) == expected


def test_an_import_of_the_edge_from_a_function_in_the_control_plane_is_a_crossing(
    tmp_path: Path,
) -> None:
    write_tree(
        tmp_path,
        {
            "control_plane/__init__.py": "",
            "control_plane/cli.py": "def demo():\n    from edge.pos import register\n",
            "edge/__init__.py": "",
            "edge/pos/__init__.py": "",
            "edge/pos/register.py": "",
        },
    )
    graph = import_graph(tmp_path, ["control_plane", "edge"])
    assert crossings(graph, importer="control_plane", imported="edge") == [
        "control_plane.cli -> edge.pos.register  (control_plane/cli.py:2)"
    ]


def test_an_import_of_the_edge_through_a_shared_package_is_a_crossing(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "control_plane/__init__.py": "",
            "control_plane/app.py": "from shared import tools\n",
            "shared/__init__.py": "",
            "shared/tools.py": "import json\n\n\ndef enrol():\n    import edge.enrolment\n",
            "edge/__init__.py": "",
            "edge/enrolment.py": "import shared.tools\n",
        },
    )
    graph = import_graph(tmp_path, ["control_plane", "edge", "shared"])
    assert crossings(graph, importer="control_plane", imported="edge") == [
        "control_plane.app -> shared.tools -> edge.enrolment  (shared/tools.py:5)"
    ]
