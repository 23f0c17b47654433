"""``myna-hil soak``: the soak run, or with ``--tearing N`` the tearing run, from the CLI.

Exit status: 0 pass; 1 errors, invariant violations or RSS growth; 2 bad usage or a slot
that is not free.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.vpcd import reader_name as reader_for_slot
from harness.cli.output import STDOUT, emit, json_text
from harness.optional import PYSCARD_MISSING

if TYPE_CHECKING:  # the engines need pyscard: imported where they run
    from harness.reliability.soak import SoakResult
    from harness.reliability.tearing import TearingResult

__all__ = ["add_parser", "checked_slots", "cmd_soak", "soak_json", "tearing_json"]


def _slots(text: str) -> list[int]:
    """``4`` or ``4,5``: ``--slot`` may repeat or take a comma list."""
    try:
        slots = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of slot numbers: {text!r}") from None
    if not slots or any(s < 0 for s in slots):
        raise argparse.ArgumentTypeError("give one or two different slots, e.g. 4,5")
    return slots


def checked_slots(slots: list[int] | None) -> list[int]:
    """The slots of ``--slot`` (default 0,1): one or two different ones."""
    slots = slots or [0, 1]
    if not 1 <= len(slots) <= 2 or len(set(slots)) != len(slots):
        raise ValueError("give one or two different slots, e.g. --slot 4 --slot 5 (or 4,5)")
    return slots


def add_parser(sub: Any) -> None:
    """Register ``soak`` on the ``myna-hil`` sub-parsers."""
    p = sub.add_parser(
        "soak",
        help="drive vpcd slots at full speed (or kill the emulator: --tearing N)",
        description="Start the emulator (first slot) and the echo card (second slot) as child "
        "processes, drive both through pcscd at full speed and report APDUs, errors, latency "
        "and the emulator's memory. With --tearing N: SIGKILL the emulator N times mid-command "
        "in the first slot and check its state file after each kill. Only for vpcd slots this "
        "run may fill: a slot that already holds a card is refused.",
    )
    p.add_argument("--minutes", type=float, default=1.0, help="duration (default 1)")
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)  # short runs in tests
    p.add_argument(
        "--slot",
        type=_slots,
        action="extend",
        dest="slot",
        metavar="N[,M]",
        help="vpcd slot (myna-emu serve --slot); repeat or give N,M for the echo card's "
        "slot; default 0,1",
    )
    # The spelling before every command said --slot; kept, hidden.
    p.add_argument("--slots", type=_slots, action="extend", dest="slot", help=argparse.SUPPRESS)
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-': stdout)")
    p.add_argument("--tearing", type=int, metavar="N", help="tearing run with N kills instead")
    p.add_argument("--seed", type=int, help="--tearing: random seed (reproduce a run)")


def soak_json(result: SoakResult) -> dict[str, Any]:
    """The soak result as data (latencies in microseconds)."""
    return {
        "format": "myna-hil-soak",
        "version": 1,
        "ok": result.ok,
        "seconds": round(result.seconds, 3),
        "apdus": result.apdus,
        "errors": result.errors,
        "rss_start_kib": result.rss_start_kib,
        "rss_end_kib": result.rss_end_kib,
        "rss_growth": round(result.rss_growth, 4),
        "slots": [
            {
                "slot": s.slot,
                "card": s.card,
                "apdus": s.apdus,
                "errors": s.errors,
                "first_error": s.first_error or None,
                "p50_us": round(s.latency.quantile(0.5) * 1e6, 1),
                "p99_us": round(s.latency.quantile(0.99) * 1e6, 1),
                "max_us": round(s.latency.max * 1e6, 1),
            }
            for s in result.slots
        ],
    }


def tearing_json(result: TearingResult) -> dict[str, Any]:
    """The tearing result as data."""
    return {
        "format": "myna-hil-tearing",
        "version": 1,
        "ok": result.ok,
        "kills": result.kills,
        "seconds": round(result.seconds, 3),
        "apdus": result.apdus,
        "checks": result.checks,
        "slot_restarts": result.stuck,
        "torn": dict(sorted(result.torn.items())),
        "violations": list(result.violations),
    }


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()


class NoSuchSlotError(RuntimeError):
    """pcscd is unreachable or shows no reader for a requested slot."""


def check_readers(slots: list[int]) -> None:
    """Fail fast, before any process starts or any wait begins, when pcscd cannot be reached
    or has no reader for one of *slots* (pcscd's reader.conf sets how many slots exist)."""
    from smartcard import scard  # optional dependency (pyscard): cmd_soak reports its absence

    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if code != scard.SCARD_S_SUCCESS:
        raise NoSuchSlotError(f"cannot reach pcscd: {scard.SCardGetErrorMessage(code)}")
    try:
        code, readers = scard.SCardListReaders(context, [])
    finally:
        scard.SCardReleaseContext(context)
    if code & 0xFFFFFFFF == scard.SCARD_E_NO_READERS_AVAILABLE & 0xFFFFFFFF:
        readers = []
    elif code != scard.SCARD_S_SUCCESS:
        raise NoSuchSlotError(f"cannot list readers: {scard.SCardGetErrorMessage(code)}")
    for slot in slots:
        reader = reader_for_slot(slot)
        if reader not in readers:
            have = sum(r.startswith("Virtual PCD") for r in readers)
            raise NoSuchSlotError(
                f"slot {slot}: pcscd has no reader {reader!r} ({have} vpcd slots; "
                "'myna-hil ci pcscd start --readers N' adds more)"
            )


def cmd_soak(args: argparse.Namespace) -> int:
    try:
        args.slots = checked_slots(args.slot)
    except ValueError as exc:
        return _fail(str(exc))
    if args.json is not None and args.json != STDOUT and Path(args.json).is_dir():
        return _fail(f"--json {args.json}: is a directory, not a file")
    try:
        if args.tearing is not None:
            return _tearing(args)
        return _soak(args)
    except ImportError:  # pyscard missing (harness.optional): the one line
        return _fail(f"soak {PYSCARD_MISSING}")
    except RuntimeError as exc:  # SlotBusyError, NoSuchSlotError; slots.py: pcscd went away
        return _fail(str(exc))


def _fail(message: str) -> int:
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(f"myna-hil soak: error: {message}", file=sys.stderr)
    return 2


def _soak(args: argparse.Namespace) -> int:
    # Optional dependency: the soak engine drives pcscd through pyscard (cmd_soak reports
    # its absence); the rest of myna-hil works without it.
    from harness.reliability.soak import run_soak

    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    if seconds <= 0:
        print("myna-hil soak: the duration must be positive", file=sys.stderr)
        return 2
    check_readers(args.slots)

    def show(elapsed: float, r: SoakResult) -> None:
        rate = r.apdus / elapsed if elapsed else 0
        _progress(
            f"soak {elapsed:.0f}/{seconds:.0f} s  {r.apdus} APDUs  {rate:.0f}/s  {r.errors} errors"
        )

    result = run_soak(seconds, args.slots, progress=show)
    _progress("")
    print(result.report())
    if args.json is not None:
        emit(args.json, json_text(soak_json(result)), getattr(args, "stdout", None))
    return 0 if result.ok else 1


def _tearing(args: argparse.Namespace) -> int:
    # Optional dependency: the tearing engine waits for pcscd through pyscard (see _soak).
    from harness.reliability.tearing import run_tearing

    if args.tearing < 1:
        print("myna-hil soak: --tearing needs at least 1 kill", file=sys.stderr)
        return 2
    check_readers(args.slots[:1])

    def show(r: TearingResult) -> None:
        _progress(f"tearing {r.kills}/{args.tearing} kills  {len(r.violations)} violations")

    result = run_tearing(args.tearing, args.slots[0], seed=args.seed, progress=show)
    _progress("")
    print(result.summary())
    for violation in result.violations:
        print(f"  {violation}")
    print("PASS" if result.ok else "FAIL")
    if args.json is not None:
        emit(args.json, json_text(tearing_json(result)), getattr(args, "stdout", None))
    return 0 if result.ok else 1
