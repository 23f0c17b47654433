"""pyscard is optional (the ``[pcsc]`` extra): the modules behind the in-process card, the
pytest plugin, ``myna-emu`` and ``myna-hil run --all`` never import ``smartcard`` when they
are imported, directly or through any first-party module they import at module level.
(tests/harness/test_without_pyscard.py runs the commands with pyscard blocked.)"""

from __future__ import annotations

import ast

import pytest

from tests.architecture.test_imports import OPTIONAL_DEPENDENCY, _files, _top_level_imports

#: Loaded without pyscard: the console scripts, the plugin (every pytest run of the
#: environment loads it), the in-process card and its pyscard reader, the scenario runner.
PYSCARD_FREE = (
    "emulator.__main__",
    "emulator.cli",
    "emulator.cli_serve",
    "harness.__main__",
    "harness.cli",
    "harness.cli.__main__",
    "harness.cikit",
    "harness.pytest_plugin",
    "harness.inprocess",
    "harness.cards",
    "harness.controls",
    "harness.optional",
    "harness.pyscard_reader",
    "harness.virtual_pcsc",
    "harness.scenarios.runner",
    "harness.scenarios.served",
    "harness.trace",
    "harness.panel",
)


def _path_to_pyscard(start: str) -> list[str] | None:
    """The chain of module-level imports from *start* to ``smartcard``, if there is one."""
    files = _files()
    parents: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        name = todo.pop(0)
        path = files[name]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = _top_level_imports(tree, name, path.name == "__init__.py")
        # Importing a submodule runs its packages' __init__ first.
        packages = {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 1)}
        for target in sorted(imported | (packages & files.keys())):
            if target == OPTIONAL_DEPENDENCY or target.startswith(f"{OPTIONAL_DEPENDENCY}."):
                chain = [name]
                while (parent := parents[chain[-1]]) is not None:
                    chain.append(parent)
                return [*reversed(chain), target]
            if target in files and target not in parents:
                parents[target] = name
                todo.append(target)
    return None


@pytest.mark.parametrize("module", PYSCARD_FREE)
def test_module_never_imports_pyscard(module: str) -> None:
    assert module in _files(), f"{module} is gone: update PYSCARD_FREE"
    chain = _path_to_pyscard(module)
    assert chain is None, " -> ".join(chain or [])


@pytest.mark.parametrize("module", ["harness.hil.pcsc", "harness.reliability.soak"])
def test_the_check_finds_the_pcsc_modules(module: str) -> None:
    chain = _path_to_pyscard(module)
    assert chain is not None and chain[-1].startswith(OPTIONAL_DEPENDENCY), chain
