"""``myna-emu``: create, inspect and talk to virtual My Number Cards from the shell.

Exit status: 0 success, 1 a command failed, 2 bad usage or input (one-line message on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from emulator import __version__, pins
from emulator.card import Card
from emulator.cli_serve import add_serve_parser, run_serve
from emulator.identity import FRESH_KEYS_ENV, generate_holder
from emulator.personalise import new_state
from emulator.profiles import ATRS, DEFAULT_ATR_FORM, PROFILES, STANDARD
from emulator.protocol import CHECK_NUMBERS, OPTIONAL_PINS, PIN_ORDER
from emulator.state import Holder, Quirks, StateError, dump_json, load_json
from emulator.store import DEFAULT_WAIT, StoreError


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _parse_pin(text: str) -> tuple[str, str]:
    # The argument is a secret: messages say what is wrong with it and never quote it.
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected NAME=VALUE, e.g. auth=1234 (no '=' found)")
    if name not in pins.SPECS:
        known = ", ".join(PIN_ORDER)
        raise argparse.ArgumentTypeError(f"unknown PIN name before '='; known: {known}")
    return name, value


def _parse_holder(text: str) -> list[str]:
    fields = text.split(",")
    if not 2 <= len(fields) <= 4 or not all(fields[:2]):
        raise argparse.ArgumentTypeError("expected NAME,ADDRESS[,YYYYMMDD[,SEX]]")
    if len(fields) > 2:
        try:
            dt.datetime.strptime(fields[2], "%Y%m%d")
        except ValueError:
            raise argparse.ArgumentTypeError("birth date must be YYYYMMDD") from None
    if len(fields) > 3 and fields[3] not in ("0", "1", "2", "9"):
        raise argparse.ArgumentTypeError("sex must be an ISO 5218 code: 0, 1, 2 or 9")
    return fields


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="myna-emu",
        description="A virtual Japanese My Number Card (JPKI) for tests.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "-v",
        "--verbose",
        dest="verbose_top",
        action="count",
        default=0,
        help="more log on stderr (before or after the command; serve: -vv adds APDU hex)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create a new card (a card database)")
    init.add_argument("--state", required=True, type=Path, help="card database to create")
    init.add_argument(
        "--profile",
        choices=PROFILES,
        default=STANDARD,
        help="standard PIN card or face-authentication card (default: standard)",
    )
    init.add_argument(
        "--pin",
        action="append",
        type=_parse_pin,
        default=[],
        metavar="NAME=VALUE",
        help="set a secret: auth (4 digits, default 1234), sign (6-16 of A-Z0-9, default "
        "ABC123), juki (default 3456), helper (default 2345); repeatable",
    )
    init.add_argument(
        "--atr",
        choices=sorted(ATRS),
        default=DEFAULT_ATR_FORM,
        help=f"answer-to-reset form (default: {DEFAULT_ATR_FORM})",
    )
    init.add_argument(
        "--quirk-9000-after-verify",
        action="store_true",
        help="answer 9000 to an empty VERIFY after a successful one (seen on some real cards)",
    )
    init.add_argument(
        "--quirk-reselect-keeps-verification",
        action="store_true",
        help="keep the verified PINs when the selected application is selected "
        "again (default: cleared; public evidence does not settle it)",
    )
    init.add_argument(
        "--holder-seed",
        type=int,
        metavar="N",
        help="generate the fictitious holder from seed N (reproducible; default: random)",
    )
    init.add_argument(
        "--holder",
        type=_parse_holder,
        metavar="NAME,ADDRESS[,YYYYMMDD[,SEX]]",
        help="holder data for the text AP (use U+3000 between family and given "
        "name, as cards do); fields left out are generated",
    )
    init.add_argument(
        "--fresh-keys",
        action="store_true",
        help="generate new RSA keys for this card instead of using the published TEST keys "
        f"(about 0.3 s; also {FRESH_KEYS_ENV}=1)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    _add_wait(init)

    show = sub.add_parser("show", help="profile and PIN counters (never the values)")
    show.add_argument("--state", required=True, type=Path)
    show.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="machine-readable output: to standard output ('--json' or '--json -') or to FILE",
    )

    imp = sub.add_parser(
        "import",
        help="create a card database from a JSON card state (older myna-hil, or 'export')",
    )
    imp.add_argument("json_file", type=Path, metavar="JSON", help="the JSON card state to read")
    imp.add_argument("--state", required=True, type=Path, help="card database to create")
    imp.add_argument("--force", action="store_true", help="overwrite an existing file")
    _add_wait(imp)

    exp = sub.add_parser(
        "export",
        help="write a card as JSON (salted hashes, never PIN values), e.g. to keep it in git",
    )
    exp.add_argument("--state", required=True, type=Path)
    exp.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write here (created 0600) instead of standard output",
    )

    apdu = sub.add_parser(
        "apdu",
        help="power the card on and send command APDUs",
        description="Send each APDU (arguments, or one hex string per line on stdin) and print "
        "each response as one hex line (data + SW). Spaces inside hex are allowed.",
    )
    apdu.add_argument("--state", required=True, type=Path)
    apdu.add_argument("apdus", nargs="*", metavar="HEX")
    _add_wait(apdu)

    add_serve_parser(sub)
    for command in (init, show, imp, exp, apdu):
        command.add_argument(
            "-v", "--verbose", action="count", default=0, help="-v: info log; -vv: debug log"
        )
    return p


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help="how long to wait for another process that is changing the same card "
        f"(default: {DEFAULT_WAIT:g})",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 to 3600")
    return value


def _hex(text: str, where: str) -> bytes:
    """The APDU in *text*; a ``UsageError`` that says where and why, never what (a PIN)."""
    cleaned = "".join(text.split())
    bad = next((i for i, c in enumerate(cleaned) if c not in string.hexdigits), None)
    if bad is not None:
        raise UsageError(f"{where} is not a hex APDU (character {bad + 1} is not a hex digit)")
    if len(cleaned) % 2:
        raise UsageError(f"{where} is not a hex APDU (odd number of hex digits)")
    return bytes.fromhex(cleaned)


def _holder(fields: list[str] | None, seed: int | None) -> Holder:
    """The generated holder (from *seed*), with the fields given on the command line."""
    holder = generate_holder(seed=seed)
    names = ("name", "address", "birth_date", "sex")
    return replace(holder, **dict(zip(names, fields or (), strict=False)))


def cmd_init(args: argparse.Namespace) -> int:
    if os.path.lexists(args.state) and not args.force:
        raise UsageError(f"{args.state} exists; use --force to overwrite it")
    overrides = dict(args.pin)
    try:
        state = new_state(
            profile=args.profile,
            pin_overrides=overrides,
            atr_form=args.atr,
            quirks=Quirks(
                status_9000_after_verify=args.quirk_9000_after_verify,
                reselect_keeps_verification=args.quirk_reselect_keeps_verification,
            ),
            holder=_holder(args.holder, args.holder_seed),
            fresh_keys=args.fresh_keys or None,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    Card.create(args.state, state, force=args.force, wait=args.wait).close()
    print(f"created {args.profile} card {args.state} (holder: {state.holder.name})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if os.path.lexists(args.state) and not args.force:
        raise UsageError(f"{args.state} exists; use --force to overwrite it")
    state = load_json(args.json_file)
    Card.create(args.state, state, force=args.force, wait=args.wait).close()
    print(f"imported {args.json_file} into {args.state} ({state.profile} card)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _opened(args.state, read_only=True) as card:
        text = dump_json(card.state)
    if args.output is None:
        # JSON is UTF-8 whatever the terminal's encoding (RFC 8259).
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        return 0
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    return 0


@contextlib.contextmanager
def _opened(path: Path, wait: float = DEFAULT_WAIT, *, read_only: bool = False) -> Iterator[Card]:
    card = Card.open(path, wait=wait, read_only=read_only)
    try:
        yield card
    finally:
        card.close()


def pin_table(card: Card) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    extras = [p for p in (*OPTIONAL_PINS, *CHECK_NUMBERS) if p in card.state.pins]
    for name in (*PIN_ORDER, *extras):
        rec = card.state.pins.get(name)
        spec = pins.SPECS[name]
        if rec is None:
            rows.append({"pin": name, "label": spec.short, "present": False})
        else:
            rows.append(
                {
                    "pin": name,
                    "label": spec.short,
                    "present": True,
                    "tries_left": rec.tries_left,
                    "max_tries": rec.max_tries,
                    "blocked": rec.blocked,
                }
            )
    return rows


def cmd_show(args: argparse.Namespace) -> int:
    # One snapshot, never blocking a writer; read-only media too.
    with _opened(args.state, read_only=True) as card:
        return _show(card, args)


def _show(card: Card, args: argparse.Namespace) -> int:
    rows = pin_table(card)
    if args.json is not None:
        doc = {
            "profile": card.state.profile,
            "atr": card.atr.hex().upper(),
            "atr_form": card.state.atr_form,
            "quirks": card.state.quirks.__dict__,
            "pins": rows,
        }
        text = json.dumps(doc, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
            return 0
        try:
            Path(args.json).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--json {args.json}: cannot write: {exc.strerror}") from None
        return 0
    print(f"profile  {card.state.profile}")
    print(f"atr      {card.atr.hex(' ').upper()} ({card.state.atr_form})")
    print(f"{'PIN':<9} {'tries':>7}  status")
    for r in rows:
        if not r["present"]:
            print(f"{r['pin']:<9} {'-':>7}  absent ({card.state.profile} card)")
        else:
            status = "BLOCKED" if r["blocked"] else "ok"
            print(f"{r['pin']:<9} {r['tries_left']:>3} / {r['max_tries']:<2} {status}")
    return 0


#: Bound on APDU lines read from standard input (each is checked before any is sent).
MAX_STDIN_BYTES = 16 * 1024 * 1024


def _commands(args: argparse.Namespace) -> list[bytes]:
    """Every APDU, checked before the card is touched: arguments, else standard input."""
    if args.apdus:
        return [_hex(a, f"argument {i}") for i, a in enumerate(args.apdus, 1)]
    if sys.stdin is None or sys.stdin.closed:
        raise UsageError("no APDUs: give them as arguments or one per line on standard input")
    try:
        text = sys.stdin.read(MAX_STDIN_BYTES + 1)
    except UnicodeDecodeError:
        raise UsageError("standard input is not text (expected hex APDUs, one per line)") from None
    except OSError as exc:
        raise UsageError(f"cannot read standard input: {exc.strerror}") from None
    if len(text) > MAX_STDIN_BYTES:
        raise UsageError(f"standard input is larger than {MAX_STDIN_BYTES // 2**20} MiB")
    return [
        _hex(line, f"line {n}")
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def cmd_apdu(args: argparse.Namespace) -> int:
    commands = _commands(args) if args.apdus else []  # arguments: checked before opening
    with _opened(args.state, args.wait) as card:
        commands = commands or _commands(args)  # stdin: every line checked before sending
        card.power_on()
        for raw in commands:
            response = card.transmit(raw)
            print(response.hex().upper(), flush=True)
            if card.store_error is not None:
                # The card answered 6581: the change was not made durable. Stop here.
                raise card.store_error
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose_top + args.verbose  # -v before or after the command
    if args.command == "serve":
        args.verbose = verbose  # serve sets up its own logging (-v / -vv)
    else:
        # Not for serve: a basicConfig here would win over its own (basicConfig does nothing
        # once the root logger has a handler).
        level = (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
        logging.basicConfig(level=level, format="myna-emu: %(levelname)s %(message)s")
    handlers = {
        "init": cmd_init,
        "show": cmd_show,
        "apdu": cmd_apdu,
        "import": cmd_import,
        "export": cmd_export,
    }
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        return run_serve(args)
    except (UsageError, StateError) as exc:
        print(f"myna-emu: error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"myna-emu: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`); not an error of ours.
        sys.stderr.close()
        return 0


def _tolerant_output() -> None:
    """Holder names on a terminal that cannot show them: '?' instead of a traceback."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


if __name__ == "__main__":
    sys.exit(main())
