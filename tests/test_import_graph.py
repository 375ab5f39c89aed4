"""The import graph of resnet_cli, read from the source with ``ast`` (nothing is imported): no circle among the
imports a module runs when it is imported, and the layers of DESIGN.md's flow (spec -> plan -> model -> analysis
-> render -> cli) point one way.

What counts: imports at a module's top level, also inside its top-level ``if``/``try``/``with`` blocks and class
bodies (they run at import time); not those inside functions (they run when called: the lazy imports that keep
torch out of the fast commands), nor those under ``if TYPE_CHECKING:`` (they never run). Relative imports are
resolved; ``from pkg import name`` where ``pkg.name`` is a module is an import of that module (not of ``pkg``'s
other names).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "resnet_cli"


def module_files(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module of the package at ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``body`` that run when the module is imported (see the module's docstring)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking_only(node):
                yield from import_time_statements(node.body)
            yield from import_time_statements(node.orelse)
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from import_time_statements(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from import_time_statements(node.body)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> what it imports at import time: the package's modules by dotted name, anything else by its top
    name (``torch`` for ``from torch import nn``)."""
    modules = module_files(root)
    graph = {}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        imported = set()
        for node in import_time_statements(ast.parse(path.read_text(encoding="utf-8"), str(path)).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
                targets = submodules + ([source] if len(submodules) < len(node.names) else [])
            imported |= {t if t in modules else t.partition(".")[0] for t in targets}
        graph[name] = imported - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports among the graph's own modules, as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    for start in sorted(graph):
        if start in state:
            continue
        path, branches = [start], [iter(sorted(graph[start] & graph.keys()))]
        state[start] = "open"
        while path:
            step = next(branches[-1], None)
            if step is None:
                state[path.pop()] = "done"
                branches.pop()
            elif state.get(step) == "open":
                return path[path.index(step):] + [step]
            elif step not in state:
                state[step] = "open"
                path.append(step)
                branches.append(iter(sorted(graph[step] & graph.keys())))
    return None


def chain_to(graph: dict[str, set[str]], start: str, forbidden: Callable[[str], bool]) -> list[str] | None:
    """The shortest chain of imports by which importing ``start`` runs a forbidden module, or None. Importing a
    module runs its parent packages' ``__init__`` first, so they are on the way too."""
    before = {start: ""}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        if forbidden(name) and name != start:
            chain = [name]
            while before[chain[-1]]:
                chain.append(before[chain[-1]])
            return chain[::-1]
        parents = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
        for step in sorted((graph.get(name, set()) | parents) - before.keys()):
            before[step] = name
            queue.append(step)
    return None


def _under(*prefixes: str) -> Callable[[str], bool]:
    return lambda name: any(name == p or name.startswith(f"{p}.") for p in prefixes)


GRAPH = import_graph(PACKAGE)


def test_the_graph_is_read_from_the_tree():
    """What the checks below stand on: every module is read, with edges that are there."""
    assert len(GRAPH) == len(list(PACKAGE.rglob("*.py"))) and "resnet_cli.training.trainer" in GRAPH
    # plan/__init__.py: "from ..spec import ArchSpec", "from .layers import ...", "from .model import ..."
    assert GRAPH["resnet_cli.plan"] == {"__future__", "resnet_cli.spec", "resnet_cli.plan.layers",
                                        "resnet_cli.plan.model"}
    assert "torch" in GRAPH["resnet_cli.models.base"]
    # cli/app.py's "from . import clickapi, failures": the two modules, not the package around them
    assert {"resnet_cli.cli.clickapi", "resnet_cli.cli.failures"} <= GRAPH["resnet_cli.cli.app"]
    assert "resnet_cli.cli" not in GRAPH["resnet_cli.cli.app"]


def test_no_circle_among_module_level_imports():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


LAYERS = [  # (the modules, what they must not run when imported, why)
    (_under("resnet_cli.spec", "resnet_cli.plan"), _under("torch"),
     "specs and analytic plans are torch-free: archs and params never pay for importing torch"),
    (_under("resnet_cli.render"), _under("resnet_cli.cli"), "render is below the CLI"),
    (_under("resnet_cli.models"), _under("resnet_cli.cli", "resnet_cli.render"),
     "a model knows nothing of its presentation"),
    (_under("resnet_cli.analysis"), _under("resnet_cli.cli"), "analyses are pure functions the CLI calls"),
]


@pytest.mark.parametrize("layer, forbidden, why", LAYERS, ids=["spec-plan", "render", "models", "analysis"])
def test_layers_point_one_way(layer, forbidden, why):
    modules = [name for name in GRAPH if layer(name)]
    assert modules
    crossings = [chain for name in modules if (chain := chain_to(GRAPH, name, forbidden))]
    assert not crossings, f"{why}; but: " + "; ".join(" -> ".join(chain) for chain in crossings)


# --------------------------------------------------------------------------- the checker on a package made here
def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_checker_finds_a_circle_and_counts_only_what_runs_at_import(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from .a import x\n",
        "a.py": "from . import b\nx = 1\n",
        "b.py": "import typing\nif typing.TYPE_CHECKING:\n    from .c import z\ntry:\n    from .sub import deep\n"
                "except ImportError:\n    pass\n\ndef f():\n    from .a import x\n",
        "c.py": "from .b import f\nimport torch.nn\n",
        "sub/__init__.py": "",
        "sub/deep.py": "from .. import c\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.a"} and graph["pkg.a"] == {"pkg.b"}
    # the TYPE_CHECKING import and the one inside f() do not count; the one in try does
    assert graph["pkg.b"] == {"typing", "pkg.sub.deep"}
    assert graph["pkg.c"] == {"pkg.b", "torch"} and graph["pkg.sub.deep"] == {"pkg.c"}
    assert find_cycle(graph) == ["pkg.b", "pkg.sub.deep", "pkg.c", "pkg.b"]
    # importing pkg.sub.deep runs pkg/__init__ first, and with it pkg.a and pkg.b
    assert chain_to(graph, "pkg.sub.deep", _under("torch")) == ["pkg.sub.deep", "pkg.c", "torch"]
    assert chain_to(graph, "pkg.a", _under("pkg.sub")) == ["pkg.a", "pkg.b", "pkg.sub.deep"]
    assert chain_to(graph, "pkg.a", _under("numpy")) is None
    (pkg / "c.py").write_text("def later():\n    from .b import f\n")  # made lazy: the circle is gone
    assert find_cycle(import_graph(pkg)) is None
