"""``myna-hil status``: the card's identity and its four PIN counters; no try is spent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emulator.card import Card
from emulator.protocol import PIN_ORDER, SPECS
from emulator.state import StateError
from harness.cards import new_card
from harness.cli.errors import UsageError
from harness.cli.reader import open_reader
from harness.errors import NoSuchFileError
from harness.hil.guard import Interlocks, authorise, guarded
from harness.hil.identity import NotAMyNumberCardError, identify
from harness.inprocess import InProcessTransport
from harness.sessions import JpkiSession, JukiSession, PinStatus, TextSession
from harness.transport import Transport, TransportError

__all__ = ["add_parser", "cmd_status", "status_report"]


def add_parser(sub: Any) -> None:
    """Register ``status`` on the ``myna-hil`` sub-parsers."""
    st = sub.add_parser("status", help="the four PIN counters (no try is spent)")
    src = st.add_mutually_exclusive_group()
    src.add_argument("--reader", metavar="NAME", help="a PC/SC reader")
    src.add_argument("--state", metavar="FILE", type=Path, help="a myna-emu card state file")


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
    lines.append(
        f"card ID: {ident.card_id}  (auth certificate serial; issuer {ident.issuer}; "
        "opt a test card in with --destructive-card ID)"
    )
    statuses: list[PinStatus | None] = []
    for name in ("auth", "sign"):
        try:
            statuses.append(JpkiSession(transport).pin_status(name))
        except NoSuchFileError:
            statuses.append(None)
    statuses += [JukiSession(transport).pin_status(), TextSession(transport).pin_status()]
    labels = [SPECS[name].short for name in PIN_ORDER]
    for label, st in zip(labels, statuses, strict=True):
        lines.append(f"  {label:<22} {'absent' if st is None else st.describe()}")
    return "\n".join(lines)
