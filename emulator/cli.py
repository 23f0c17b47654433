"""``myna-emu``: create, inspect and talk to virtual My Number Cards from the shell.

Exit status: 0 success, 1 a command failed, 2 bad usage or input (one-line message on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from emulator import __version__, pins
from emulator.card import Card
from emulator.personalise import new_state
from emulator.profiles import ATRS, DEFAULT_ATR_FORM, PROFILES, STANDARD
from emulator.state import Quirks, StateError

PIN_ORDER = ("auth", "sign", "juki", "helper")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _parse_pin(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {name!r}")
    if name not in pins.SPECS:
        raise argparse.ArgumentTypeError(f"unknown PIN {name!r}; known: {', '.join(PIN_ORDER)}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="myna-emu",
        description="A virtual Japanese My Number Card (JPKI) for tests.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create a new card state file")
    init.add_argument("--state", required=True, type=Path, help="state file to create")
    init.add_argument("--profile", choices=PROFILES, default=STANDARD,
                      help="standard PIN card or face-authentication card (default: standard)")
    init.add_argument(
        "--pin", action="append", type=_parse_pin, default=[], metavar="NAME=VALUE",
        help="set a secret: auth (4 digits, default 1234), sign (6-16 of A-Z0-9, default "
             "ABC123), juki (default 3456), helper (default 2345); repeatable",
    )
    init.add_argument("--atr", choices=sorted(ATRS), default=DEFAULT_ATR_FORM,
                      help=f"answer-to-reset form (default: {DEFAULT_ATR_FORM})")
    init.add_argument("--quirk-9000-after-verify", action="store_true",
                      help="answer 9000 to an empty VERIFY after a successful one (seen on "
                           "some real cards)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    show = sub.add_parser("show", help="profile and PIN counters (never the values)")
    show.add_argument("--state", required=True, type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable output")

    apdu = sub.add_parser(
        "apdu",
        help="power the card on and send command APDUs",
        description="Send each APDU (arguments, or one hex string per line on stdin) and print "
                    "each response as one hex line (data + SW). Spaces inside hex are allowed.",
    )
    apdu.add_argument("--state", required=True, type=Path)
    apdu.add_argument("apdus", nargs="*", metavar="HEX")

    try:
        from emulator.cli_serve import add_serve_parser
    except ImportError:  # pragma: no cover - serve lands with the vpcd transport
        pass
    else:
        add_serve_parser(sub)
    return p


def _hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise UsageError(f"not a hex APDU: {text.strip()[:40]!r}") from None


def cmd_init(args: argparse.Namespace) -> int:
    if args.state.exists() and not args.force:
        raise UsageError(f"{args.state} exists; use --force to overwrite it")
    overrides = dict(args.pin)
    try:
        state = new_state(
            profile=args.profile, pin_overrides=overrides, atr_form=args.atr,
            quirks=Quirks(status_9000_after_verify=args.quirk_9000_after_verify),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    Card.create(args.state, state)
    print(f"created {args.profile} card {args.state} (holder: {state.holder.name})")
    return 0


def pin_table(card: Card) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in PIN_ORDER:
        rec = card.state.pins.get(name)
        spec = pins.SPECS[name]
        if rec is None:
            rows.append({"pin": name, "label": spec.label, "present": False})
        else:
            rows.append({"pin": name, "label": spec.label, "present": True,
                         "tries_left": rec.tries_left, "max_tries": rec.max_tries,
                         "blocked": rec.blocked})
    return rows


def cmd_show(args: argparse.Namespace) -> int:
    card = Card.open(args.state)
    rows = pin_table(card)
    if args.json:
        json.dump({"profile": card.state.profile, "atr": card.atr.hex().upper(),
                   "atr_form": card.state.atr_form,
                   "quirks": card.state.quirks.__dict__, "pins": rows}, sys.stdout, indent=2)
        print()
        return 0
    print(f"profile  {card.state.profile}")
    print(f"atr      {card.atr.hex(' ').upper()} ({card.state.atr_form})")
    print(f"{'PIN':<8} {'tries':>7}  status")
    for r in rows:
        if not r["present"]:
            print(f"{r['pin']:<8} {'-':>7}  absent ({card.state.profile} card)")
        else:
            status = "BLOCKED" if r["blocked"] else "ok"
            print(f"{r['pin']:<8} {r['tries_left']:>3} / {r['max_tries']:<1}  {status}")
    return 0


def _lines(args: argparse.Namespace) -> Iterable[str]:
    if args.apdus:
        return list(args.apdus)
    return (line for line in sys.stdin if line.strip() and not line.lstrip().startswith("#"))


def cmd_apdu(args: argparse.Namespace) -> int:
    commands = [_hex(a) for a in args.apdus]  # validate arguments before touching the card
    card = Card.open(args.state)
    card.power_on()
    try:
        source = commands if args.apdus else (_hex(line) for line in _lines(args))
        for raw in source:
            print(card.transmit(raw).hex().upper(), flush=True)
    finally:
        card.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        # serve sets up its own logging (-v / -vv); a basicConfig here would win over it
        # (basicConfig does nothing once the root logger has a handler).
        logging.basicConfig(level=logging.WARNING, format="myna-emu: %(levelname)s %(message)s")
    handlers = {"init": cmd_init, "show": cmd_show, "apdu": cmd_apdu}
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        from emulator.cli_serve import run_serve

        return run_serve(args)
    except (UsageError, StateError) as exc:
        print(f"myna-emu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`); not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
