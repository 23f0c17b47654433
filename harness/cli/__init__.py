"""``myna-hil``: run the lock/reset scenarios, query a card, read and explain traces.

Exit status: 0 success; 1 a scenario failed (or a trace diverged / differs from golden);
2 bad usage or input (or output that cannot be written), with a one-line message on stderr
and no traceback (``-v`` logs details).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import __version__

logger = logging.getLogger(__name__)


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def card_id(text: str) -> str:
    """argparse type for a card ID (the auth certificate serial, hex)."""
    from harness.guard import normalise_card_id

    try:
        return normalise_card_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def tries(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= n <= 5:
        raise argparse.ArgumentTypeError("must be 1..5")
    return n


def add_interlock_options(parser: argparse.ArgumentParser) -> None:
    """The safety interlocks for a card in a reader (README: "Running against a real card")."""
    from harness.guard import DEFAULT_MIN_TRIES

    parser.add_argument("--destructive-card", metavar="ID", type=card_id,
                        help="with --reader: the card in the reader is a test card you may "
                             "lock; ID is its identity as 'myna-hil status --reader NAME' "
                             "shows it. Another card stops the run before any try is spent")
    parser.add_argument("--allow-blocking", action="store_true",
                        help="with --destructive-card: also run steps that block a PIN "
                             "(on a real card only the municipal counter unblocks it)")
    parser.add_argument("--min-tries", metavar="N", type=tries, default=DEFAULT_MIN_TRIES,
                        help="a VERIFY with data on a card not opted in must leave N tries "
                             f"if the value is wrong (default {DEFAULT_MIN_TRIES})")
    parser.add_argument("--destructive", action="store_true", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="myna-hil",
        description="PIN lock/reset scenarios against a virtual or physical My Number Card.",
    )
    p.add_argument("--version", action="version", version=f"myna-hil {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log to stderr (-vv: APDU hex, secrets redacted)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("list", help="list the scenarios")

    run = sub.add_parser("run", help="run scenarios (built-in emulator unless --reader)")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    run.add_argument("--all", action="store_true", help="run the whole catalogue")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--reader", metavar="NAME", help="a PC/SC reader instead of the emulator")
    where.add_argument("--vpcd-slot", metavar="N", type=int,
                       help="serve the built-in emulator in vpcd slot N (reader 'Virtual PCD "
                            "00 00' is slot 0) and run through pcscd like an app would; needs "
                            "pcscd with the vpcd driver (ci/pcscd-start.sh)")
    add_interlock_options(run)
    run.add_argument("--trace", metavar="DIR", type=Path, help="write a trace per scenario")
    run.add_argument("--unredacted-secrets", action="store_true",
                     help="keep PIN data in traces (never for a physical card)")
    run.add_argument("--json", metavar="FILE", type=Path, help="write results as JSON")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="only failing steps and the summary")

    st = sub.add_parser("status", help="the four PIN counters (no try is spent)")
    src = st.add_mutually_exclusive_group()
    src.add_argument("--reader", metavar="NAME", help="a PC/SC reader")
    src.add_argument("--state", metavar="FILE", type=Path, help="a myna-emu card state file")

    tr = sub.add_parser("trace", help="show, explain, replay or check traces")
    tsub = tr.add_subparsers(dest="trace_command", metavar="ACTION")
    show = tsub.add_parser("show", help="print a trace as a table")
    show.add_argument("file", type=Path)
    ex = tsub.add_parser("explain", help="every retry-counter decrement, with cause and remedy")
    ex.add_argument("file", type=Path)
    rp = tsub.add_parser("replay", help="replay a trace as the card under its scenario")
    rp.add_argument("file", type=Path)
    rp.add_argument("--scenario", help="scenario unit to run (default: the trace's own)")
    gd = tsub.add_parser("golden", help="compare every scenario with traces/golden/")
    gd.add_argument("--update", action="store_true", help="rewrite the golden traces")
    gd.add_argument("--dir", type=Path, help="golden directory (default: traces/golden)")
    from harness.reliability.cli_soak import add_soak_parser

    add_soak_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return 0 if exc.code == 0 else 2
    from harness.cli_output import tolerate_encoding

    tolerate_encoding(sys.stdout, sys.stderr)
    if args.verbose:
        from emulator import TRAFFIC

        logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s",
                            level=TRAFFIC if args.verbose > 1 else logging.INFO)
    else:
        _quiet_logging()
    try:
        return dispatch(args, parser)
    except UsageError as exc:
        error(str(exc))
        return 2
    except BrokenPipeError:  # output piped into head & co.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the terminal, a pipe or the disk failed us: not a bug
        error(f"{exc.strerror or type(exc).__name__}"
              f"{f': {exc.filename}' if exc.filename else ''}")
        return 2
    except KeyboardInterrupt:
        print("myna-hil: interrupted", file=sys.stderr)
        return 130


def error(message: str) -> None:
    """The one line on stderr of a failed command (``myna-hil: error: ...``, like argparse)."""
    first = message.splitlines()[0] if message.strip() else "failed"
    print(f"myna-hil: error: {first}", file=sys.stderr)


def _quiet_logging() -> None:
    """Without ``-v``, a logged error (a scenario that crashed on a malformed replayed
    answer) must not reach stderr through logging's last-resort handler as a traceback:
    the result already names the error."""
    for name in ("harness", "emulator"):
        log = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())


def dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from harness import cli_commands, cli_trace

    if args.command == "list":
        return cli_commands.cmd_list()
    if args.command == "run":
        return cli_commands.cmd_run(args)
    if args.command == "status":
        return cli_commands.cmd_status(args)
    if args.command == "soak":
        from harness.reliability.cli_soak import cmd_soak

        return cmd_soak(args)
    if args.command == "trace":
        if args.trace_command is None:
            raise UsageError("trace needs an action: show, explain, replay or golden")
        return cli_trace.dispatch(args)
    parser.print_usage(sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
