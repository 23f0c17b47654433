"""``myna-hil soak``: the soak run, or with ``--tearing N`` the tearing run, from the CLI.

Exit status: 0 pass; 1 errors, invariant violations or RSS growth; 2 bad usage or a slot
that is not free.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emulator.vpcd import reader_name as reader_for_slot
from harness.optional import PYSCARD_MISSING

__all__ = ["add_parser", "cmd_soak"]


def _slots(text: str) -> list[int]:
    try:
        slots = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of slot numbers: {text!r}") from None
    if not 1 <= len(slots) <= 2 or any(s < 0 for s in slots) or len(set(slots)) != len(slots):
        raise argparse.ArgumentTypeError("give one or two different slots, e.g. 4,5")
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
        "--slots",
        type=_slots,
        default=[0, 1],
        metavar="N[,M]",
        help="vpcd slots (myna-emu serve --slot), default 0,1",
    )
    p.add_argument("--tearing", type=int, metavar="N", help="tearing run with N kills instead")
    p.add_argument("--seed", type=int, help="--tearing: random seed (reproduce a run)")


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
                "ci/pcscd-start.sh with MYNA_VPCD_EXTRA adds more)"
            )


def cmd_soak(args: argparse.Namespace) -> int:
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
    from harness.reliability.soak import SoakResult, run_soak

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
    return 0 if result.ok else 1


def _tearing(args: argparse.Namespace) -> int:
    # Optional dependency: the tearing engine waits for pcscd through pyscard (see _soak).
    from harness.reliability.tearing import TearingResult, run_tearing

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
    return 0 if result.ok else 1
