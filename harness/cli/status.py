"""``myna-hil status``: the card's identity and its four PIN counters; no try is spent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emulator.card import Card
from emulator.state import StateError
from harness.cards import new_card
from harness.cli.errors import UsageError
from harness.cli.output import check_target, emit, json_text
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
    st.add_argument("--json", metavar="FILE", help="write the status as JSON ('-': stdout)")


def cmd_status(args: argparse.Namespace) -> int:
    check_target(args.json)
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
        doc = status_doc(transport, where)
    print(format_status(doc))
    if args.json is not None:
        emit(args.json, json_text(doc), getattr(args, "stdout", None))
    return 0


LABELS = {
    "auth": "JPKI auth PIN",
    "sign": "JPKI signing password",
    "juki": "Juki PIN",
    "helper": "text-AP PIN",
}


def status_doc(transport: Transport, where: str) -> dict[str, Any]:
    """ATR, card identity and the four counters, by empty VERIFY only, as data."""
    try:
        ident = identify(transport)
    except NotAMyNumberCardError as exc:
        raise UsageError(str(exc)) from None
    statuses: list[PinStatus | None] = []
    for name in ("auth", "sign"):
        try:
            statuses.append(JpkiSession(transport).pin_status(name))
        except NoSuchFileError:
            statuses.append(None)
    statuses += [JukiSession(transport).pin_status(), TextSession(transport).pin_status()]
    pins = []
    for name, st in zip(LABELS, statuses, strict=True):
        row: dict[str, Any] = {"pin": name, "label": LABELS[name], "present": st is not None}
        if st is not None:
            row.update(
                tries_left=st.tries_left,
                max_tries=st.max_tries,
                blocked=st.blocked,
                usable=st.usable,
                status=st.describe(),
            )
        pins.append(row)
    return {
        "format": "myna-hil-status",
        "version": 1,
        "card": where,
        "atr": transport.atr.hex().upper(),
        "card_id": ident.card_id,
        "issuer": ident.issuer,
        "not_after": ident.not_after,
        "pins": pins,
    }


def format_status(doc: dict[str, Any]) -> str:
    """The human form of :func:`status_doc`."""
    lines = [f"card: {doc['card']}", f"ATR:  {bytes.fromhex(doc['atr']).hex(' ').upper()}"]
    lines.append(
        f"card ID: {doc['card_id']}  (auth certificate serial; issuer {doc['issuer']}; "
        "opt a test card in with --destructive-card ID)"
    )
    for row in doc["pins"]:
        shown = row["status"] if row["present"] else "absent"
        lines.append(f"  {row['label']:<22} {shown}")
    return "\n".join(lines)


def status_report(transport: Transport, where: str) -> str:
    """ATR, card identity and the four counters, by empty VERIFY only."""
    return format_status(status_doc(transport, where))
