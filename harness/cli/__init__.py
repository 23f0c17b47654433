"""``myna-hil``: run the lock/reset scenarios, query a card, read and explain traces, tap an app.

Machine-readable output: every ``--json FILE`` (and ``run --junit FILE``) takes ``-`` for
standard output; the human output then goes to stderr. ``-v`` works before or after the
command.

Exit status: 0 success; 1 a scenario failed (or a trace diverged / differs from golden);
2 bad usage or input (or output that cannot be written), with a one-line message on stderr
and no traceback (``-v`` logs details).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from emulator import TRAFFIC
from harness import __version__
from harness.cli import ci, listing, run, soak, status, tap, trace
from harness.cli.errors import UsageError, error
from harness.cli.output import STDOUT, tolerate_encoding

__all__ = ["build_parser", "dispatch", "main"]


def build_parser() -> argparse.ArgumentParser:
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
    listing.add_parser(sub)
    run.add_parser(sub)
    status.add_parser(sub)
    trace.add_parser(sub)
    soak.add_parser(sub)
    ci.add_parser(sub)
    tap.add_parser(sub)
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
    parser = build_parser()
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
    if args.command == "list":
        return listing.cmd_list(args)
    if args.command == "run":
        return run.cmd_run(args)
    if args.command == "status":
        return status.cmd_status(args)
    if args.command == "soak":
        return soak.cmd_soak(args)
    if args.command == "tap":
        return tap.cmd_tap(args)
    if args.command == "trace":
        if args.trace_command is None:
            raise UsageError("trace needs an action: show, explain, replay, golden or import")
        return trace.dispatch(args)
    if args.command == "ci":
        return ci.cmd_ci(args)
    parser.print_usage(sys.stderr)
    return 2
