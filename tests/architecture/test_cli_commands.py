"""The CLI's command table: every entry names a CLI module that defines the command, the
help still lists every command, and a command loads no other command's module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import COMMANDS, build_parser, command_module

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_module_defines_its_command(name: str) -> None:
    module_name, function = COMMANDS[name]
    assert module_name.startswith("harness.cli.")
    module = command_module(name)
    assert callable(module.add_parser) and callable(getattr(module, function))
    parser = build_parser(only=name)
    assert parser.parse_args([name, *_required(name)]).command == name


def _required(name: str) -> list[str]:
    """Arguments *name* cannot parse without."""
    required = {"trace": ["show", "x.jsonl"], "ci": ["pcscd", "status"], "tap": ["--reader", "R"]}
    return required.get(name, [])


def test_the_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in COMMANDS)


def test_dynamic_imports_are_the_command_table_and_pyscard_only() -> None:
    """``importlib.import_module`` loads a command's module (by the table) or pyscard, and
    nothing else: every other import is a statement the layering tests read."""
    callers = set()
    for path in [*REPO.joinpath("harness").rglob("*.py"), *REPO.joinpath("emulator").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("import_module", "__import__"):
                callers.add(str(path.relative_to(REPO)))
    assert callers == {"harness/cli/__init__.py", "harness/optional.py"}


#: Modules of other commands that ``run`` and ``list`` must not load.
NOT_FOR_RUN = ("harness.cikit", "harness.hil.tap", "harness.trace.logs", "harness.cli.tap")


@pytest.mark.parametrize("argv", [["list"], ["run", "lockout-juki"]])
def test_a_command_loads_only_its_own_module(argv: list[str]) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from harness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({argv!r})\n"
        "print(code, *sorted(m for m in sys.modules if m.startswith(('harness', 'emulator'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    status, *loaded = done.stdout.split()
    assert status == "0", done.stderr
    assert COMMANDS[argv[0]][0] in loaded
    others = [m for m in loaded for bad in NOT_FOR_RUN if m == bad or m.startswith(f"{bad}.")]
    assert not others, others
    assert not [m for name, (m, _) in COMMANDS.items() if name != argv[0] and m in loaded]
