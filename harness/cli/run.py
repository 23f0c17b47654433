"""``myna-hil run``: scenario units on the built-in emulator, a vpcd slot or a reader."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from emulator.identity import FRESH_KEYS_ENV
from harness.cards import pooled_card, shared_pki, use_fresh_keys
from harness.cli.errors import UsageError
from harness.cli.junit import to_junit
from harness.cli.output import (
    STDOUT,
    Progress,
    check_target,
    emit,
    format_result,
    json_text,
    summary_line,
    to_json,
)
from harness.cli.reader import open_reader
from harness.hil.guard import (
    DEFAULT_MIN_TRIES,
    InterlockError,
    Interlocks,
    authorise,
    normalise_card_id,
)
from harness.hil.identity import NotAMyNumberCardError
from harness.optional import PyscardMissingError, require_pyscard
from harness.scenarios.base import STANDARD
from harness.scenarios.runner import (
    Opener,
    Unit,
    UnknownScenarioError,
    all_units,
    reader_opener,
    renamed,
    run_unit,
    select_units,
)
from harness.scenarios.served import interlocks_for, served_emulator
from harness.transport import TransportError


def card_id(text: str) -> str:
    """argparse type for a card ID (the auth certificate serial, hex)."""
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
    parser.add_argument(
        "--destructive-card",
        metavar="ID",
        type=card_id,
        help="with --reader: the card in the reader is a test card you may "
        "lock; ID is its identity as 'myna-hil status --reader NAME' "
        "shows it. Another card stops the run before any try is spent",
    )
    parser.add_argument(
        "--allow-blocking",
        action="store_true",
        help="with --destructive-card: also run steps that block a PIN "
        "(on a real card only the municipal counter unblocks it)",
    )
    parser.add_argument(
        "--min-tries",
        metavar="N",
        type=tries,
        default=DEFAULT_MIN_TRIES,
        help="a VERIFY with data on a card not opted in must leave N tries "
        f"if the value is wrong (default {DEFAULT_MIN_TRIES})",
    )
    parser.add_argument("--destructive", action="store_true", help=argparse.SUPPRESS)


def add_parser(sub: Any) -> None:
    """Register ``run`` on the ``myna-hil`` sub-parsers."""
    run = sub.add_parser("run", help="run scenarios (built-in emulator unless --reader)")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    run.add_argument("--all", action="store_true", help="run the whole catalogue")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--reader", metavar="NAME", help="a PC/SC reader instead of the emulator")
    where.add_argument(
        "--slot",
        metavar="N",
        type=int,
        dest="slot",
        help="serve the built-in emulator in vpcd slot N (reader 'Virtual PCD "
        "00 00' is slot 0) and run through pcscd like an app would; needs "
        "pcscd with the vpcd driver ('myna-hil ci pcscd start')",
    )
    # The spelling before every command said --slot; kept, hidden.
    where.add_argument("--vpcd-slot", type=int, dest="slot", help=argparse.SUPPRESS)
    add_interlock_options(run)
    run.add_argument("--trace", metavar="DIR", type=Path, help="write a trace per scenario")
    run.add_argument(
        "--unredacted-secrets",
        action="store_true",
        help="keep PIN data in traces (never for a physical card)",
    )
    run.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    run.add_argument(
        "--junit",
        metavar="FILE",
        help="write results as JUnit XML, one testcase per scenario unit ('-': stdout)",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="only failing steps and the summary"
    )
    run.add_argument(
        "--fresh-keys",
        action="store_true",
        help="give the emulator's cards newly generated RSA keys instead of the published "
        f"TEST keys (about 0.3 s; also {FRESH_KEYS_ENV}=1)",
    )


def interlocks_from(args: argparse.Namespace) -> Interlocks:
    """The ``--destructive-card`` / ``--allow-blocking`` / ``--min-tries`` options, checked."""
    if args.destructive:
        raise UsageError(
            "--destructive was replaced by --destructive-card ID: the identity of "
            "the test card, as 'myna-hil status --reader NAME' shows it"
        )
    if args.destructive_card and not args.reader:
        raise UsageError("--destructive-card only applies with --reader")
    if args.allow_blocking and not args.destructive_card:
        raise UsageError("--allow-blocking needs --destructive-card ID (and --reader)")
    if args.reader and args.unredacted_secrets:
        raise UsageError(
            "--unredacted-secrets is refused with --reader: traces from a "
            "physical card are always redacted"
        )
    return Interlocks(args.destructive_card, args.allow_blocking, args.min_tries)


def identify_reader(name: str, interlocks: Interlocks) -> str:
    """One line about the card in reader *name*; stops (UsageError) on a wrong or foreign card."""
    transport = open_reader(name)
    try:
        permit = authorise(transport, interlocks)
    except (InterlockError, NotAMyNumberCardError, TransportError) as exc:
        raise UsageError(f"{name}: {exc}") from None
    finally:
        transport.close()
    opted = (
        "not opted in: read-only"
        if not permit.destructive
        else "the named test card: destructive"
        + (", blocking allowed" if permit.blocking else ", no blocking")
    )
    return (
        f"reader {name}: card ID {permit.card_id}, ATR {transport.atr.hex(' ').upper()} ({opted})"
    )


def cmd_run(args: argparse.Namespace) -> int:
    if args.all and args.scenarios:
        raise UsageError("give scenario names or --all, not both")
    if not args.all and not args.scenarios:
        raise UsageError("name the scenarios to run (see 'myna-hil list') or pass --all")
    interlocks = interlocks_from(args)
    if args.fresh_keys:
        if args.reader:
            raise UsageError("--fresh-keys applies to the emulator, not to a card in --reader")
        use_fresh_keys()
    try:
        units: list[Unit] = all_units() if args.all else select_units(args.scenarios)
    except UnknownScenarioError as exc:
        raise UsageError(str(exc)) from None
    for old, new in renamed(args.scenarios or ()):
        print(f"myna-hil: note: scenario {old!r} is now called {new!r}", file=sys.stderr)
    if args.trace is not None and args.trace.exists() and not args.trace.is_dir():
        raise UsageError(f"--trace {args.trace}: not a directory")
    check_target(args.json)  # before the run, not after it
    check_target(args.junit, "--junit")
    if args.json == STDOUT and args.junit == STDOUT:
        raise UsageError("--json - and --junit -: only one of them can have standard output")
    kwargs: dict[str, Any] = {
        "trace_dir": args.trace,
        "redact": not args.unredacted_secrets,
        "interlocks": interlocks,
    }
    opener = reader_opener(lambda: open_reader(args.reader)) if args.reader else None
    with contextlib.ExitStack() as stack:
        if args.slot is not None:
            opener = serve_in_slot(stack, args.slot, kwargs)
        return _run_units(args, units, opener, kwargs)


def serve_in_slot(stack: contextlib.ExitStack, slot: int, kwargs: dict[str, Any]) -> Opener:
    """Serve the emulator in vpcd *slot* for this run; opt the card in by its own identity."""
    if slot < 0:
        raise UsageError(f"--slot must be >= 0, not {slot}")
    try:
        require_pyscard("--slot")  # before the keys are made: fail fast
    except PyscardMissingError as exc:
        raise UsageError(str(exc)) from None
    shared_pki()
    try:
        opener, served = stack.enter_context(served_emulator(slot))
    except (TransportError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    # Every pooled card shares the run's PKI, so one identity covers both profiles.
    kwargs["interlocks"] = interlocks_for(pooled_card(STANDARD))
    print(
        f"built-in emulator served in vpcd slot {slot} ({served!r}) through pcscd; "
        f"opted in as card {kwargs['interlocks'].destructive_card}"
    )
    return opener


def _run_units(
    args: argparse.Namespace, units: list[Unit], opener: Opener | None, kwargs: dict[str, Any]
) -> int:
    progress = Progress()
    if args.reader:
        print(identify_reader(args.reader, kwargs["interlocks"]))
    elif opener is None:
        t0 = time.perf_counter()
        shared_pki()  # one TEST PKI for every card of the run
        for profile in {u.profile for u in units}:
            pooled_card(profile)  # parse the keys once per profile
        print(
            f"built-in emulator, memory mode; TEST PKI and cards ready in "
            f"{time.perf_counter() - t0:.2f} s"
        )
    start = time.perf_counter()
    results = []
    stopped = None
    for n, unit in enumerate(units):
        progress(n, len(units), unit.name)
        try:
            result = run_unit(unit, opener, **kwargs)[0]
        except (InterlockError, NotAMyNumberCardError, TransportError) as exc:
            stopped = str(exc)  # the card changed or went away: stop, send nothing more
            break
        results.append(result)
        if not (args.quiet and result.ok):
            progress(len(units), len(units), "")
            print(format_result(result, steps=not args.quiet))
        if opener and result.error and result.error.startswith("transport"):
            stopped = result.error
            break
    progress(len(units), len(units), "")
    seconds = time.perf_counter() - start
    print(summary_line(results, seconds))
    where = args.reader or ("in-process" if args.slot is None else f"vpcd slot {args.slot}")
    stdout = getattr(args, "stdout", None)
    if args.json is not None:
        emit(args.json, json_text(to_json(results, seconds, where)), stdout)
    if args.junit is not None:
        emit(args.junit, to_junit(results, seconds, where), stdout, "--junit")
    if args.trace:
        print(
            f"traces: {args.trace}/<scenario>.jsonl"
            f"{' (secrets NOT redacted)' if args.unredacted_secrets else ''}"
        )
    if stopped:
        print(
            f"myna-hil: run stopped after {len(results)} of {len(units)} units: {stopped}; "
            "nothing was retried",
            file=sys.stderr,
        )
        return 1
    return 0 if all(r.ok or r.skipped for r in results) else 1


__all__ = ["add_parser", "cmd_run", "identify_reader", "interlocks_from"]
