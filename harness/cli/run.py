"""``myna-hil list``, ``run`` and ``status``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from typing import Any

from harness.cli import UsageError
from harness.cli_output import Progress, format_result, summary_line, to_json, write_json
from harness.errors import NoSuchFileError
from harness.guard import InterlockError, Interlocks, authorise, guarded
from harness.hil_identity import NotAMyNumberCardError, identify
from harness.scenarios.base import REGISTRY, STANDARD
from harness.scenarios.runner import (
    Opener,
    Unit,
    UnknownScenarioError,
    all_units,
    reader_opener,
    run_unit,
    select_units,
)
from harness.sessions import JpkiSession, JukiSession, PinStatus, TextSession
from harness.transport import Transport, TransportError

logger = logging.getLogger(__name__)


def open_reader(name: str) -> Transport:
    """A PC/SC transport to reader *name* (a physical card as far as the harness knows)."""
    try:
        from harness.pcsc import PcscTransport
    except ImportError as exc:
        raise UsageError(f"PC/SC support is not available ({exc})") from None
    try:
        return PcscTransport(name)
    except TransportError as exc:
        raise UsageError(str(exc)) from None


def cmd_list() -> int:
    width = max(len(u) for s in REGISTRY.values() for u in s.units())
    print(f"{'scenario':<{width}}  {'kind':<16} summary")
    for s in REGISTRY.values():
        kind = ("in-process" if s.needs_admin else
                "destructive" if s.destructive else "read-only")
        for unit in s.units():
            print(f"{unit:<{width}}  {kind:<16} {s.summary}")
    return 0


def interlocks_from(args: argparse.Namespace) -> Interlocks:
    """The ``--destructive-card`` / ``--allow-blocking`` / ``--min-tries`` options, checked."""
    if args.destructive:
        raise UsageError("--destructive was replaced by --destructive-card ID: the identity of "
                         "the test card, as 'myna-hil status --reader NAME' shows it")
    if args.destructive_card and not args.reader:
        raise UsageError("--destructive-card only applies with --reader")
    if args.allow_blocking and not args.destructive_card:
        raise UsageError("--allow-blocking needs --destructive-card ID (and --reader)")
    if args.reader and args.unredacted_secrets:
        raise UsageError("--unredacted-secrets is refused with --reader: traces from a "
                         "physical card are always redacted")
    return Interlocks(args.destructive_card, args.allow_blocking, args.min_tries)


def identify_reader(reader: str, interlocks: Interlocks) -> str:
    """One line about the card in *reader*; stops (UsageError) on a wrong or foreign card."""
    transport = open_reader(reader)
    try:
        permit = authorise(transport, interlocks)
    except (InterlockError, NotAMyNumberCardError, TransportError) as exc:
        raise UsageError(f"{reader}: {exc}") from None
    finally:
        transport.close()
    opted = ("not opted in: read-only" if not permit.destructive else
             "the named test card: destructive" +
             (", blocking allowed" if permit.blocking else ", no blocking"))
    return f"reader {reader}: card ID {permit.card_id}, ATR {transport.atr.hex(' ').upper()} " \
           f"({opted})"


def cmd_run(args: argparse.Namespace) -> int:
    if args.all and args.scenarios:
        raise UsageError("give scenario names or --all, not both")
    if not args.all and not args.scenarios:
        raise UsageError("name the scenarios to run (see 'myna-hil list') or pass --all")
    interlocks = interlocks_from(args)
    try:
        units: list[Unit] = all_units() if args.all else select_units(args.scenarios)
    except UnknownScenarioError as exc:
        raise UsageError(str(exc)) from None
    if args.trace is not None and args.trace.exists() and not args.trace.is_dir():
        raise UsageError(f"--trace {args.trace}: not a directory")
    if args.json is not None and args.json.is_dir():  # before the run, not after it
        raise UsageError(f"--json {args.json}: is a directory, not a file")
    kwargs: dict[str, Any] = {
        "trace_dir": args.trace, "redact": not args.unredacted_secrets,
        "interlocks": interlocks,
    }
    opener = reader_opener(lambda: open_reader(args.reader)) if args.reader else None
    with contextlib.ExitStack() as stack:
        if args.vpcd_slot is not None:
            opener = serve_in_slot(stack, args.vpcd_slot, kwargs)
        return _run_units(args, units, opener, kwargs)


def serve_in_slot(stack: contextlib.ExitStack, slot: int, kwargs: dict[str, Any]) -> Opener:
    """Serve the emulator in vpcd *slot* for this run; opt the card in by its own identity."""
    from harness.scenarios.cards import pooled_card, shared_pki
    from harness.scenarios.served import interlocks_for, served_emulator

    if slot < 0:
        raise UsageError(f"--vpcd-slot must be >= 0, not {slot}")
    shared_pki()
    try:
        opener, reader = stack.enter_context(served_emulator(slot))
    except (TransportError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    # Every pooled card shares the run's PKI, so one identity covers both profiles.
    kwargs["interlocks"] = interlocks_for(pooled_card(STANDARD))
    print(f"built-in emulator served in vpcd slot {slot} ({reader!r}) through pcscd; "
          f"opted in as card {kwargs['interlocks'].destructive_card}")
    return opener


def _run_units(args: argparse.Namespace, units: list[Unit], opener: Opener | None,
               kwargs: dict[str, Any]) -> int:
    progress = Progress()
    if args.reader:
        print(identify_reader(args.reader, kwargs["interlocks"]))
    elif opener is None:
        from harness.scenarios.cards import pooled_card, shared_pki

        t0 = time.perf_counter()
        shared_pki()  # one TEST PKI for every card of the run
        for profile in {u.profile for u in units}:
            pooled_card(profile)  # parse the keys once per profile
        print(f"built-in emulator, memory mode; TEST PKI and cards ready in "
              f"{time.perf_counter() - t0:.2f} s")
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
    if args.json:
        where = args.reader or ("in-process" if args.vpcd_slot is None else
                                f"vpcd slot {args.vpcd_slot}")
        try:
            write_json(args.json, to_json(results, seconds, where))
        except OSError as exc:
            raise UsageError(f"--json {args.json}: cannot write: "
                             f"{exc.strerror or type(exc).__name__}") from None
    if args.trace:
        print(f"traces: {args.trace}/<scenario>.jsonl"
              f"{' (secrets NOT redacted)' if args.unredacted_secrets else ''}")
    if stopped:
        print(f"myna-hil: run stopped after {len(results)} of {len(units)} units: {stopped}; "
              "nothing was retried", file=sys.stderr)
        return 1
    return 0 if all(r.ok or r.skipped for r in results) else 1


def cmd_status(args: argparse.Namespace) -> int:
    if args.reader:
        transport = open_reader(args.reader)
        try:  # identified by free reads; then the read-only guard, like any run
            transport = guarded(transport, authorise(transport, Interlocks()))
        except (NotAMyNumberCardError, TransportError) as exc:
            transport.close()
            raise UsageError(f"{args.reader}: {exc}") from None
        where = f"reader {args.reader}"
    else:
        from emulator.card import Card
        from emulator.state import StateError
        from harness.inprocess import InProcessTransport
        from harness.scenarios.cards import new_card

        try:
            card = Card.open(args.state) if args.state else new_card()
        except StateError as exc:
            raise UsageError(str(exc)) from None
        transport = InProcessTransport(card)
        where = f"state {args.state}" if args.state else "built-in emulator (fresh card)"
    with transport:
        print(status_report(transport, where))
    return 0


def status_report(transport: Transport, where: str) -> str:
    """ATR, card identity and the four counters, by empty VERIFY only."""
    lines = [f"card: {where}", f"ATR:  {transport.atr.hex(' ').upper()}"]
    try:
        ident = identify(transport)
    except NotAMyNumberCardError as exc:
        raise UsageError(str(exc)) from None
    lines.append(f"card ID: {ident.card_id}  (auth certificate serial; issuer {ident.issuer}; "
                 "opt a test card in with --destructive-card ID)")
    statuses: list[PinStatus | None] = []
    for name in ("auth", "sign"):
        try:
            statuses.append(JpkiSession(transport).pin_status(name))
        except NoSuchFileError:
            statuses.append(None)
    statuses += [JukiSession(transport).pin_status(), TextSession(transport).pin_status()]
    labels = ("JPKI auth PIN", "JPKI signing password", "Juki PIN", "text-AP PIN")
    for label, st in zip(labels, statuses, strict=True):
        lines.append(f"  {label:<22} {'absent' if st is None else st.describe()}")
    return "\n".join(lines)


__all__ = ["cmd_list", "cmd_run", "cmd_status", "open_reader", "status_report"]
