"""``myna-hil``: run the lock/reset scenarios, query a card, read and explain traces, tap an app.

Machine-readable output: every ``--json FILE`` (and ``run --junit FILE``) takes ``-`` for
standard output; the human output then goes to stderr. ``-v`` works before or after the
command.

Exit status: 0 success; 1 a scenario failed (or a trace diverged / differs from golden);
2 bad usage or input (or output that cannot be written), with a one-line message on stderr
and no traceback (``-v`` logs details).

Each command lives in its own module, named in :data:`COMMANDS` and imported only when that
command runs (or the help lists them all), the way pip loads its commands: ``myna-hil run
--all`` does not pay for the tap, the CI kit or the log importers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from emulator import TRAFFIC
from harness import __version__
from harness.cli.errors import UsageError, error
from harness.cli.output import STDOUT, tolerate_encoding

__all__ = ["COMMANDS", "build_parser", "command_module", "dispatch", "main"]

#: Command -> its module (which has ``add_parser(sub)``) and the function that runs it, in
#: the order the help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("harness.cli.listing", "cmd_list"),
    "run": ("harness.cli.run", "cmd_run"),
    "status": ("harness.cli.status", "cmd_status"),
    "trace": ("harness.cli.trace", "dispatch"),
    "soak": ("harness.cli.soak", "cmd_soak"),
    "ci": ("harness.cli.ci", "cmd_ci"),
    "tap": ("harness.cli.tap", "cmd_tap"),
}


def command_module(name: str) -> ModuleType:
    """The module of command *name* (imported now if it was not yet)."""
    return importlib.import_module(COMMANDS[name][0])


def _command_named(argv: Sequence[str]) -> str | None:
    """The command *argv* names, when it names one: its first word that is not an option
    (the program's own options take no value)."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with *only*, just that command (the others' modules are
    not imported)."""
    p = argparse.ArgumentParser(
        prog="myna-hil",
        description="PIN lock/reset scenarios against a virtual or physical My Number Card.",
    )
    p.add_argument("--version", action="version", version=f"myna-hil {__version__}")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr (-vv: APDU hex, secrets redacted)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        command_module(name).add_parser(sub)
    _verbose_after_commands(p)
    return p


def _verbose_after_commands(parser: argparse.ArgumentParser) -> None:
    """``-v`` after any (sub-)command too: ``myna-hil run -v X`` as ``myna-hil -v run X``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in set(action.choices.values()):
                command.add_argument(
                    "-v",
                    "--verbose",
                    dest="verbose_after",
                    action="count",
                    default=0,
                    help="log to stderr (-vv: APDU hex, secrets redacted)",
                )
                _verbose_after_commands(command)


def machine_to_stdout(args: argparse.Namespace) -> bool:
    """Whether a machine-readable document (``--json -``, ``--junit -``) owns stdout."""
    return any(getattr(args, option, None) == STDOUT for option in ("json", "junit"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_command_named(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return 0 if exc.code == 0 else 2
    tolerate_encoding(sys.stdout, sys.stderr)
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    if verbose:
        logging.basicConfig(
            stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",
            level=TRAFFIC if verbose > 1 else logging.INFO,
        )
    else:
        _quiet_logging()
    args.stdout = sys.stdout  # the JSON of --json - goes here; the human output to stderr
    human = contextlib.redirect_stdout(sys.stderr) if machine_to_stdout(args) else None
    try:
        with human or contextlib.nullcontext():
            return dispatch(args, parser)
    except UsageError as exc:
        error(str(exc))
        return 2
    except BrokenPipeError:  # output piped into head & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the terminal, a pipe or the disk failed us: not a bug
        error(f"{exc.strerror or type(exc).__name__}{f': {exc.filename}' if exc.filename else ''}")
        return 2
    except KeyboardInterrupt:
        print("myna-hil: interrupted", file=sys.stderr)
        return 130


def _quiet_logging() -> None:
    """Without ``-v``, a logged error (a scenario that crashed on a malformed replayed
    answer) must not reach stderr through logging's last-resort handler as a traceback:
    the result already names the error."""
    for name in ("harness", "emulator"):
        log = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())


def dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command not in COMMANDS:
        parser.print_usage(sys.stderr)
        return 2
    run: Callable[[argparse.Namespace], int] = getattr(
        command_module(args.command), COMMANDS[args.command][1]
    )
    return run(args)
