"""The package layering, checked from the source: no import cycles, lower layers never import
higher ones, and no imports hidden in functions. Module-level imports count; ``if
TYPE_CHECKING:`` blocks do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("emulator", "harness")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> set[str]:
    """The dotted names an import statement may load (``from a import b``: ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
        base = ".".join([*anchor, base] if base else anchor)
    return {base} | {f"{base}.{alias.name}" for alias in node.names}


def _top_level_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(_targets(node, module, is_package))
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _function_level_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """What the functions (methods, nested functions) of a module import when they run."""
    found: set[str] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found.update(_targets(node, module, is_package))
    return found


def _files() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _graph(*, functions: bool = False) -> dict[str, set[str]]:
    """Module -> the first-party modules it imports at module level (and in its functions,
    with *functions*)."""
    files = _files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        imported = _top_level_imports(tree, name, is_package)
        if functions:
            imported |= _function_level_imports(tree, name, is_package)
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "emulator.card" in graph and "emulator.commands" in graph["emulator.card"]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize(("lower", "higher"), [("emulator", "harness")])
def test_lower_layers_never_import_higher(lower: str, higher: str) -> None:
    graph = _graph()
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m.startswith(f"{lower}.") or m == lower
        for t in targets
        if t.startswith(f"{higher}.") or t == higher
    )
    assert not wrong, wrong


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


#: The only first-party modules imported inside functions, each by the one module that must
#: work without what the import needs: pyscard (``smartcard``), which may be missing. Everything
#: else is imported at the top of its module; a cycle is broken by moving the shared piece
#: down (or, for annotations, ``if TYPE_CHECKING:``), never by hiding an import in a function.
#: (The CLI loads each command's module by name from its table, ``harness.cli.COMMANDS``:
#: tests/architecture/test_cli_commands.py keeps that table honest.)
OPTIONAL_DEPENDENCY = "smartcard"
LAZY_IMPORTS = {
    # --reader only: list, run, status, trace and the help need no PC/SC.
    ("harness.cli.reader", "harness.hil.pcsc"),
    # The soak and tearing engines drive pcscd; the CLI reports when pyscard is missing.
    ("harness.cli.soak", "harness.reliability.soak"),
    ("harness.cli.soak", "harness.reliability.tearing"),
    # HilCard opens a reader only when it is not given a transport.
    ("harness.hil.session", "harness.hil.pcsc"),
    # The plugin loads in every pytest run of the environment; --myna-reader is rare.
    ("harness.pytest_plugin", "harness.hil.pcsc"),
    # run --slot only.
    ("harness.scenarios.served", "harness.hil.pcsc"),
}


def test_no_function_level_imports_of_first_party_modules() -> None:
    files = _files()
    found = set()
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy = _function_level_imports(tree, name, path.name == "__init__.py")
        found |= {(name, m) for m in lazy if m in files}
    hidden = sorted(f"{m} -> {t}" for m, t in found - LAZY_IMPORTS)
    assert not hidden, f"imports inside functions (move them to the top): {hidden}"
    assert not LAZY_IMPORTS - found, f"stale LAZY_IMPORTS entries: {sorted(LAZY_IMPORTS - found)}"


@pytest.mark.parametrize("target", sorted({t for _, t in LAZY_IMPORTS}))
def test_lazy_imports_are_for_the_optional_dependency_only(target: str) -> None:
    """An allowed lazy import must lead to pyscard: it is no way around an import cycle."""
    files = _files()
    seen, todo = set(), [target]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = files[name]
        imported = _top_level_imports(
            ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py"
        )
        if any(
            m == OPTIONAL_DEPENDENCY or m.startswith(f"{OPTIONAL_DEPENDENCY}.") for m in imported
        ):
            return
        todo.extend(m for m in imported if m in files)
    pytest.fail(f"{target} does not import {OPTIONAL_DEPENDENCY}: import it at the top")


#: The layers, bottom up. A module may import its own layer and the ones below, never one
#: above -- at module level or in a function. The HIL package spans two layers: its PC/SC
#: transport, card identity and guard sit under the scenarios (every run on a reader is
#: guarded), its session and report on top of them.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("emulator",),
    # harness.cikit: the CI kit (pcscd with vpcd readers), standard library only.
    (
        "harness",
        "harness.transport",
        "harness.clock",
        "harness.errors",
        "harness.cikit",
        "harness.optional",
    ),
    ("harness.sessions", "harness.trace", "harness.inprocess", "harness.revocation"),
    ("harness.actors",),
    (
        "harness.cards",
        "harness.controls",
        "harness.hil",
        "harness.hil.pcsc",
        "harness.hil.identity",
        "harness.hil.guard",
        "harness.virtual_pcsc",
        "harness.pyscard_reader",
        "harness.hil.floor",
        "harness.hil.tap",
    ),
    ("harness.scenarios",),
    ("harness.hil.session", "harness.hil.report", "harness.reliability"),
    ("harness.cli", "harness.pytest_plugin", "harness.plugin", "harness.panel", "harness.__main__"),
)


def _layer(module: str) -> int | None:
    """The layer of *module*: that of its longest listed prefix (``harness`` itself, the
    package, only by name: every other harness module is listed)."""
    best: tuple[int, int] | None = None
    for n, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "harness" and module.startswith(f"{prefix}."))
            if covers and (best is None or len(prefix) > best[0]):
                best = (len(prefix), n)
    return None if best is None else best[1]


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _files() if _layer(m) is None)
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"


def test_no_layer_imports_a_higher_one() -> None:
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in _graph(functions=True).items()
        for t in targets
        if (_layer(t) or 0) > (_layer(m) or 0)
    )
    assert not wrong, wrong


@pytest.mark.parametrize(
    "lower",
    [
        "harness.sessions",
        "harness.trace",
        "harness.scenarios",
        "harness.hil",
        "harness.reliability",
    ],
)
def test_the_cli_is_imported_by_no_library_module(lower: str) -> None:
    graph = _graph(functions=True)
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m == lower or m.startswith(f"{lower}.")
        for t in targets
        if t == "harness.cli" or t.startswith("harness.cli.")
    )
    assert not wrong, wrong


def test_layers_go_by_the_longest_prefix() -> None:
    assert _layer("harness.trace.recorder") == 2 and _layer("harness.hil.session") == 6
    assert _layer("harness.hil.guard") == 4 and _layer("harness") == 1
    assert _layer("harness.newthing") is None
