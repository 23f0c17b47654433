"""``myna-hil trace show | explain | replay | golden | import``."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cli.errors import UsageError
from harness.cli.output import check_target, emit, format_result, json_text, marks
from harness.cli.trace_import import add_parser as add_import_parser
from harness.cli.trace_import import cmd_import
from harness.controls import CardControls, ReplayControls
from harness.revocation.log import ServiceEvent, ServiceLogError, parse_service_log
from harness.scenarios.runner import Unit, UnknownScenarioError, all_units, run_unit, select_units
from harness.trace import golden
from harness.trace.explain import Explanation, Finding, explain, format_explanation
from harness.trace.recorder import TraceFormatError, read_trace
from harness.trace.records import Cmd, Lost, Meta, Note, Reset, Rsp, TraceRecord
from harness.trace.replay import ReplayDivergence, ReplayTransport
from harness.trace.service import ServiceFinding, explain_service, format_service
from harness.transport import Transport

__all__ = [
    "add_parser",
    "cmd_golden",
    "cmd_replay",
    "dispatch",
    "explanation_json",
    "format_trace",
    "printable",
]


def add_parser(sub: Any) -> None:
    """Register ``trace`` and its actions on the ``myna-hil`` sub-parsers."""
    tr = sub.add_parser("trace", help="show, explain, replay, check or import traces")
    tsub = tr.add_subparsers(dest="trace_command", metavar="ACTION")
    show = tsub.add_parser("show", help="print a trace as a table")
    show.add_argument("file", type=Path)
    ex = tsub.add_parser("explain", help="every retry-counter decrement, with cause and remedy")
    ex.add_argument("file", type=Path)
    ex.add_argument("--json", metavar="FILE", help="write the findings as JSON ('-': stdout)")
    ex.add_argument(
        "--service-log",
        type=Path,
        metavar="LOG",
        help="the revocation service's log of the same run (myna-hil run --trace writes "
        "<unit>.service.jsonl): adds why a healthy card was refused (revoked, expired, "
        "service errors)",
    )
    rp = tsub.add_parser("replay", help="replay a trace as the card under its scenario")
    rp.add_argument("file", type=Path)
    rp.add_argument("--scenario", help="scenario unit to run (default: the trace's own)")
    gd = tsub.add_parser(
        "golden",
        help="compare every scenario with its golden trace",
        description="Run every scenario unit on the built-in emulator and compare its "
        f"normalised trace with DIR/<unit>.jsonl (default DIR: the traces shipped in the "
        f"package, {golden.GOLDEN_DIR}).",
    )
    gd.add_argument("--update", action="store_true", help="rewrite the golden traces")
    gd.add_argument(
        "--dir",
        type=Path,
        help="golden directory (default: the package's own, harness/trace/golden_traces)",
    )
    add_import_parser(tsub)


def dispatch(args: argparse.Namespace) -> int:
    action = args.trace_command
    if action is None:
        raise UsageError("trace needs an action: show, explain, replay, golden or import")
    if action == "golden":
        return cmd_golden(args.update, args.dir or golden.GOLDEN_DIR)
    if action == "import":
        return cmd_import(args)
    records = _load(args.file)
    if action == "show":
        print(printable(format_trace(records)))
        return 0
    if action == "explain":
        check_target(args.json)
        expl = explain(records)
        print(printable(format_explanation(expl)))
        service: list[ServiceFinding] | None = None
        if args.service_log is not None:
            events = _load_service_log(args.service_log)
            service = explain_service(records, events)
            print(printable(format_service(service, sum(expl.decrements.values()))))
        if args.json is not None:
            data = explanation_json(expl)
            if service is not None:
                data["service"] = [dataclasses.asdict(f) for f in service]
            emit(args.json, json_text(data), getattr(args, "stdout", None))
        return 0
    return cmd_replay(records, args.scenario)


def explanation_json(expl: Explanation) -> dict[str, Any]:
    """The findings of ``trace explain`` as data: every decrement, its cause and remedy."""
    return {
        "format": "myna-hil-explanation",
        "version": 1,
        "apdus": expl.apdus,
        "decrements": dict(expl.decrements),
        "warnings": list(expl.warnings),
        "findings": [finding_json(f) for f in expl.findings],
    }


def finding_json(f: Finding) -> dict[str, Any]:
    """One decrement of ``trace explain`` as data (``--json`` of ``trace explain`` and ``tap``)."""
    return {
        "index": f.index,
        "app": f.app,
        "pin": f.pin,
        "sw": f.sw,
        "tries_left": f.tries_left,
        "cause": f.cause.name.lower(),
        "cause_text": str(f.cause),
        "decrement": f.decrement,
        "detail": f.detail,
        "remedy": f.remedy,
    }


def _load(path: Path) -> list[TraceRecord]:
    try:
        return read_trace(path)
    except TraceFormatError as exc:
        raise UsageError(str(exc)) from None


def _load_service_log(path: Path) -> list[ServiceEvent]:
    try:
        return parse_service_log(path)
    except ServiceLogError as exc:
        raise UsageError(str(exc)) from None


def printable(text: str) -> str:
    """*text* with control characters escaped: a trace's free-text fields (note details)
    must not drive the terminal."""
    if all(c.isprintable() or c == "\n" for c in text):
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def _meta(records: Sequence[TraceRecord]) -> Meta:
    if not records or not isinstance(records[0], Meta):
        raise UsageError("a trace starts with its meta record")
    return records[0]


def _or(value: str | None, default: str = "?") -> str:
    """*value*, or *default* for a field the record does not have."""
    return default if value is None else value


def format_trace(records: Sequence[TraceRecord]) -> str:
    """One line per exchange: index, command, target, hex, answer, latency; notes indented."""
    meta = _meta(records)
    atr = "?" if meta.atr is None else meta.atr.hex().upper()
    source = meta.extra.get("source")
    test = meta.extra.get("test")  # a trace the pytest plugin recorded for one test
    what = meta.scenario or (f"imported {source}" if isinstance(source, str) else None)
    what = what or (test if isinstance(test, str) else None)
    lines = [
        f"trace of {_or(what)} on {_or(meta.transport)}, "
        f"ATR {atr}, {'redacted' if meta.redacted else 'UNREDACTED'}"
    ]
    answers = {r.i: r for r in records if isinstance(r, Rsp | Lost)}
    for r in records[1:]:
        if isinstance(r, Cmd):
            a = answers.get(r.i)
            ef = None if r.ef is None else f"{r.ef:04X}"
            target = "/".join(x for x in (r.app, r.pin or ef) if x)
            if isinstance(a, Lost):
                answer = "NO ANSWER (card lost)"
            elif isinstance(a, Rsp):
                answer = f"{a.sw:04X} {_or(a.sw_name, '')}".rstrip()
            else:
                answer = "----"
            ms = None if a is None else a.latency_ms
            lines.append(
                f"#{r.i:<4} {_or(r.name, ''):<26} {target:<12} {_short(r.hex)}"
                f"  -> {answer}{'' if ms is None else f'  {ms:.2f} ms'}"
            )
        elif isinstance(r, Reset):
            lines.append(f"      -- card reset, ATR {r.atr.hex().upper()}")
        elif isinstance(r, Note):
            detail = ", ".join(f"{k}={v}" for k, v in r.fields.items())
            lines.append(
                f"      · {r.actor} {r.event}{': ' if detail else ''}{detail}  [{_or(r.clock, '')}]"
            )
    return "\n".join(lines)


def _short(hexstr: str, width: int = 40) -> str:
    return hexstr if len(hexstr) <= width else hexstr[: width - 1] + "…"


def cmd_replay(records: Sequence[TraceRecord], scenario: str | None) -> int:
    """Run the trace's scenario with the trace as the card; report the first divergence."""
    name = scenario or _meta(records).scenario
    if not name:
        raise UsageError("the trace names no scenario; pass --scenario")
    try:
        units = select_units([str(name)])
    except UnknownScenarioError as exc:
        raise UsageError(str(exc)) from None
    unit = next((u for u in units if u.name == name), units[0])
    replay = ReplayTransport(records)

    def opener(_: Unit) -> tuple[Transport, CardControls | None]:
        return replay, ReplayControls()

    result, _ = run_unit(unit, opener)
    if result.skipped:
        print(f"replay of {unit.name}: cannot replay: {result.skipped}")
        return 1
    if result.error:
        print(f"replay of {unit.name} against the trace stopped: {result.error}")
        return 1
    try:
        replay.check_finished()
    except ReplayDivergence as exc:
        print(f"replay of {unit.name}: the run ended early; {exc.describe()}")
        return 1
    print(format_result(result))
    print(f"replayed {replay.replayed} exchanges: no divergence")
    return 0 if result.ok else 1


def cmd_golden(update: bool, directory: Path) -> int:
    bad = 0
    for unit in all_units():
        _, rec = run_unit(unit)
        assert rec is not None
        if update:
            golden.update(unit.name, rec.records, directory)
            continue
        diff = golden.compare(unit.name, rec.records, directory)
        if diff:
            bad += 1
            print(f"{marks()[1]} {unit.name} differs from its golden trace:\n{diff}")
    if update:
        print(f"wrote {len(all_units())} golden traces to {directory}")
        return 0
    print(f"{len(all_units()) - bad} of {len(all_units())} scenario traces match {directory}")
    return 1 if bad else 0
