"""``myna-hil tap``: relay an unmodified PC/SC app to a card in a reader, guarded and recorded.

Exit status: 0 after Ctrl-C / SIGTERM; 1 when pcscd or the reader went away; 2 bad usage
(a reader that is not there, a slot pcscd lacks or that already holds a card, a trace file
that cannot be written), one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from emulator.vpcd import DEFAULT_HOST, reader_name, slot_port
from harness.cli.errors import UsageError
from harness.cli.output import STDOUT, check_target
from harness.cli.reader import open_tap_reader, watch_reader
from harness.cli.trace import finding_json, printable
from harness.hil.floor import DEFAULT_FLOOR, MAX_FLOOR, REFUSAL_SW, TriesFloor
from harness.hil.tap import Tap, TapEvent, TapRelay, TapStats, TraceFile, percentile
from harness.trace.explain import PIN_LABELS, Explanation, explain, format_explanation
from harness.trace.recorder import TraceLog
from harness.trace.records import Cmd, Lost, Rsp

__all__ = ["add_parser", "cmd_tap", "format_event"]


def _floor(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of tries: {text!r}") from None
    if not 0 <= value <= MAX_FLOOR:
        raise argparse.ArgumentTypeError(f"the floor is 0 to {MAX_FLOOR} tries, not {value}")
    return value


def _slot(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a slot number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the slot is 0 or more")
    return value


def add_parser(sub: Any) -> None:
    """Register ``tap`` on the ``myna-hil`` sub-parsers."""
    p = sub.add_parser(
        "tap",
        help="relay an app to a card in a reader: guarded, recorded, explained",
        description="Serve a virtual reader (vpcd slot) whose card forwards every APDU to the "
        "card in --reader and answers what it answers. Point the app at the virtual reader. "
        "Every exchange is recorded as a redacted trace (myna-hil trace explain reads it). A "
        "command that could compare or replace a PIN is forwarded only if a wrong value "
        f"would leave at least --floor tries; otherwise the app gets {REFUSAL_SW:04X} and "
        "nothing reaches the card. Card insertion, removal and resets are mirrored. Ctrl-C "
        "or SIGTERM stops the tap and prints what happened.",
        epilog="Example: myna-hil tap --reader 'ACS ACR39U 00 00' --slot 0 --trace app.jsonl "
        "(the app then uses 'Virtual PCD 00 00'). See docs/tap.md.",
    )
    p.add_argument(
        "--reader",
        required=True,
        metavar="NAME",
        help="the reader holding the card (exact name or a substring matching one reader)",
    )
    p.add_argument(
        "--slot",
        type=_slot,
        default=0,
        metavar="N",
        help="vpcd slot to serve: the app's reader (0 = 'Virtual PCD 00 00'; default 0)",
    )
    p.add_argument("--trace", type=Path, metavar="FILE", help="write the trace here (JSON lines)")
    p.add_argument(
        "--floor",
        type=_floor,
        default=DEFAULT_FLOOR,
        metavar="N",
        help=f"tries a wrong PIN must leave for a command to be forwarded (default "
        f"{DEFAULT_FLOOR}; 0 forwards everything and sends nothing of its own)",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        help="also write every event and the summary as JSON lines to FILE ('-': stdout; "
        "the text view then goes to stderr)",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=argparse.SUPPRESS)  # vpcd elsewhere


def _target(cmd: Cmd) -> str:
    ef = None if cmd.ef is None else f"{cmd.ef:04X}"
    return "/".join(x for x in (cmd.app, cmd.pin or ef) if x) or "-"


def _answer_text(answer: Rsp | Lost | None) -> str:
    if isinstance(answer, Rsp):
        return f"{answer.sw:04X} {answer.sw_name or ''}".rstrip()
    if isinstance(answer, Lost):
        return "NO ANSWER (card gone)"
    return "----"


def _sw(answer: Rsp | Lost | None) -> str:
    return f"{answer.sw:04X}" if isinstance(answer, Rsp) else "lost"


def _pin_label(cmd: Cmd) -> str:
    if cmd.pin is None:
        return f"the reference {_target(cmd)} (P2 {cmd.p2 or 0:02X})"
    return f"the {PIN_LABELS.get(cmd.pin, cmd.pin)} ({_target(cmd)})"


def format_event(event: TapEvent) -> str | None:
    """One line of the live view for *event* (``None``: nothing to show)."""
    cmd, answer = event.cmd, event.answer
    if cmd is not None:
        ms = getattr(answer, "latency_ms", None)
        took = "" if ms is None or event.kind == "refused" else f"  {ms:.2f} ms"
        mark = {
            "query": "  [tap: counter query]",
            "refused": "  [REFUSED by the tap: not sent]",
        }.get(event.kind, "")
        return (
            f"#{cmd.i:<5} {cmd.name or '':<26} {_target(cmd):<14} {_answer_text(answer)}"
            f"{took}{mark}"
        )
    text = {
        "inserted": f"+ card in the reader (ATR {event.detail}): inserted in the virtual reader",
        "removed": f"- {event.detail}: the virtual card is removed",
        "power-on": "  power on (card reset)",
        "power-off": "  power off (card reset)",
        "reset": "  reset (card reset)",
        "slot": f"  virtual reader: card {event.detail}",
        "problem": f"! {event.detail}",
    }.get(event.kind)
    return text


def refusal_line(event: TapEvent, floor: int) -> str:
    """The loud stderr line of a refused command: the PIN, its tries, the app's previous
    commands (names and answers, never values)."""
    assert event.cmd is not None and event.refusal is not None
    cmd = event.cmd
    header = bytes.fromhex("".join(cmd.hex.split())[:8]).hex(" ").upper()
    head = f"{cmd.name or 'command'} ({header})"
    previous = ", ".join(f"#{c.i} {c.name} {_target(c)} {_sw(a)}" for c, a in event.history)
    return (
        f"myna-hil tap: REFUSED #{cmd.i} {head} to {_pin_label(cmd)}: {event.refusal.reason}"
        f" (--floor {floor}). The app got {REFUSAL_SW:04X}; nothing was sent to the card. "
        f"The app's previous commands: {previous or 'none'}"
    )


def event_json(event: TapEvent) -> dict[str, Any]:
    """*event* as one JSON object (``--json``); never a PIN value."""
    out: dict[str, Any] = {"event": event.kind}
    cmd, answer = event.cmd, event.answer
    if cmd is not None:
        out.update(i=cmd.i, name=cmd.name, hex=cmd.hex, app=cmd.app, pin=cmd.pin)
        if cmd.ef is not None:
            out["ef"] = f"{cmd.ef:04X}"
        out["by"] = "tap" if event.kind == "query" else "app"
    if isinstance(answer, Rsp):
        out.update(sw=f"{answer.sw:04X}", sw_name=answer.sw_name)
        if event.kind != "refused":
            out["latency_ms"] = answer.latency_ms
    elif isinstance(answer, Lost):
        out.update(sw=None, error=answer.error)
    if event.refusal is not None:
        out.update(tries=event.refusal.tries, reason=event.refusal.reason)
        out["previous"] = [
            {"i": c.i, "name": c.name, "app": c.app, "pin": c.pin, "sw": _sw(a)}
            for c, a in event.history
        ]
    if event.detail:
        out["detail"] = event.detail
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} µs"


def summary_text(stats: TapStats, expl: Explanation, trace: Path | None) -> str:
    lines = [
        "",
        f"tap summary: {stats.commands} command(s) from the app, {stats.forwarded} forwarded, "
        f"{stats.refused} refused, {stats.lost} unanswered; {stats.queries} counter "
        f"quer{'y' if stats.queries == 1 else 'ies'} by the tap",
        f"card latency p50 {_ms(percentile(stats.card_ms, 50))}, "
        f"p99 {_ms(percentile(stats.card_ms, 99))}; the tap's own time per command "
        f"p50 {_us(percentile(stats.overhead_us, 50))}, "
        f"p99 {_us(percentile(stats.overhead_us, 99))}",
        "what trace explain finds:",
        *("  " + line for line in format_explanation(expl).splitlines()),
    ]
    if trace is not None:
        lines.append(f"trace: {trace} (myna-hil trace show / explain {trace})")
    else:
        lines.append("trace not kept (--trace FILE keeps it)")
    return "\n".join(lines)


def summary_json(stats: TapStats, expl: Explanation, trace: Path | None) -> dict[str, Any]:
    return {
        "event": "summary",
        "commands": stats.commands,
        "forwarded": stats.forwarded,
        "refused": stats.refused,
        "lost": stats.lost,
        "queries": stats.queries,
        "card_latency_ms": {
            "p50": percentile(stats.card_ms, 50),
            "p99": percentile(stats.card_ms, 99),
        },
        "tap_overhead_us": {
            "p50": percentile(stats.overhead_us, 50),
            "p99": percentile(stats.overhead_us, 99),
        },
        "decrements": expl.decrements,
        "findings": [finding_json(f) for f in expl.findings],
        "warnings": list(expl.warnings),
        "trace": None if trace is None else str(trace),
    }


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set *stop* (the tap then ends cleanly) while the block runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; the caller stops us through *stop*
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(printable(text), file=stream, flush=True)


def cmd_tap(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Run the tap until *stop* is set or a signal arrives; the exit status."""
    virtual = reader_name(args.slot)
    physical, presence, readers = open_tap_reader(args.reader)
    closers = [physical.close, presence.close]
    try:
        physical_name = physical.name.removeprefix("pcsc:")
        if virtual not in readers:
            raise UsageError(
                f"pcscd has no reader for slot {args.slot} ({virtual!r}); readers: "
                + ", ".join(repr(r) for r in readers)
            )
        if physical_name == virtual:
            raise UsageError(
                f"--reader {args.reader!r} is the tap's own reader ({virtual!r}, slot "
                f"{args.slot}): it would relay to itself"
            )
        slot_watch = watch_reader(virtual)
        occupied = slot_watch.wait(0).present
        slot_watch.close()
        if occupied:
            raise UsageError(
                f"slot {args.slot} ({virtual!r}) already holds a card (another myna-emu "
                "serve or tap?); stop it or pick another --slot"
            )
        check_target(args.json)
        trace_file = None
        if args.trace is not None:
            try:
                trace_file = TraceFile(args.trace)
            except OSError as exc:
                raise UsageError(
                    f"cannot write the trace {args.trace}: {exc.strerror or exc}"
                ) from None
            closers.append(trace_file.close)
        machine = _json_stream(args)
        if machine is not None and machine is not getattr(args, "stdout", None):
            closers.append(machine.close)
        return _run(args, physical, presence, physical_name, virtual, trace_file, machine, stop)
    finally:
        for close in reversed(closers):
            close()


def _json_stream(args: argparse.Namespace) -> TextIO | None:
    """Where ``--json`` goes: the real stdout for ``-``, a file opened now, or nowhere."""
    if args.json is None:
        return None
    if args.json == STDOUT:
        stream: TextIO = getattr(args, "stdout", None) or sys.stdout
        return stream
    try:
        return Path(args.json).open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--json {args.json}: cannot write: {exc.strerror or exc}") from None


def _run(
    args: argparse.Namespace,
    physical: Any,
    presence: Any,
    physical_name: str,
    virtual: str,
    trace_file: TraceFile | None,
    machine: TextIO | None,
    stop: threading.Event | None,
) -> int:
    floor = TriesFloor(args.floor)
    log = TraceLog(
        f"myna-hil tap: {physical_name} -> {virtual}",
        b"",
        meta={"reader": physical_name, "virtual_reader": virtual, "floor": args.floor},
    )

    def machine_line(doc: dict[str, Any]) -> None:
        if machine is not None:
            machine.write(json.dumps(doc, ensure_ascii=False) + "\n")
            machine.flush()

    def listener(event: TapEvent) -> None:
        if event.kind == "refused":
            _say(refusal_line(event, args.floor), err=True)
        machine_line(event_json(event))
        line = format_event(event)
        if line is not None:
            _say(line)

    relay = TapRelay(physical, log, floor=floor, listener=listener, trace_file=trace_file)
    tap = Tap(relay, presence, port=slot_port(args.slot), host=args.host, reader=physical_name)
    kept = f"trace {args.trace}" if args.trace else "no trace file (--trace FILE)"
    _say(
        f"myna-hil tap: {physical_name!r} -> {virtual!r} (slot {args.slot}); floor "
        f"{args.floor}{' (everything forwarded)' if args.floor == 0 else ''}; {kept}. "
        "Ctrl-C stops."
    )
    stop = stop if stop is not None else threading.Event()
    with _stop_on_signals(stop):
        why = tap.run(stop)
    if trace_file is not None:
        trace_file.write(log)
    expl = explain(log.records)
    machine_line(summary_json(relay.stats, expl, args.trace))
    _say(summary_text(relay.stats, expl, args.trace))
    if why is not None:
        _say(f"myna-hil tap: stopped: {why}", err=True)
        return 1
    return 0
