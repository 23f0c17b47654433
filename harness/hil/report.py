"""The HIL report: ATR, reader, card identity, per-command latency (p50 / p99 per INS).

Written as ``report.json`` (machine-readable, comparable with the emulator's benchmarks),
``summary.txt`` (a few lines for a human) and ``trace.jsonl`` (the wire trace, always
redacted: it comes from a physical card). No PIN ever reaches any of them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.hil.session import HilCard
from harness.trace.recorder import write_trace
from harness.trace.records import Cmd, Lost, Rsp, TraceRecord

__all__ = [
    "REPORT_FORMAT",
    "build_report",
    "latency_by_ins",
    "percentile",
    "summary_text",
    "write_report",
]

REPORT_FORMAT = "myna-hil-hil-report"
_INS_SELECT = 0xA4


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (*q* in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _label(cmd: Cmd) -> str:
    ins = "" if cmd.ins is None else f"{cmd.ins:02X}"
    # One row for every SELECT, whatever it selects (by header: a malformed one too).
    name = "SELECT" if cmd.ins == _INS_SELECT and not cmd.proprietary else cmd.name or ""
    return f"{ins} {name}".strip()


def latency_by_ins(records: Iterable[TraceRecord]) -> dict[str, dict[str, float | int]]:
    """``{"B0 READ BINARY": {"count", "p50_ms", "p99_ms", "max_ms"}, ...}`` from a trace.

    The empty VERIFY (status query) and the VERIFY with data are reported apart: the second
    costs the card a durable counter write.
    """
    cmds: dict[int, Cmd] = {}
    samples: dict[str, list[float]] = {}
    for rec in records:
        if isinstance(rec, Cmd):
            cmds[rec.i] = rec
        elif isinstance(rec, Rsp) and rec.i in cmds and rec.latency_ms is not None:
            samples.setdefault(_label(cmds[rec.i]), []).append(float(rec.latency_ms))
    return {
        label: {
            "count": len(v),
            "p50_ms": round(percentile(v, 50), 3),
            "p99_ms": round(percentile(v, 99), 3),
            "max_ms": round(max(v), 3),
        }
        for label, v in sorted(samples.items())
    }


def build_report(card: HilCard) -> dict[str, Any]:
    """The JSON document for one run."""
    records = card.wire.records
    ident = card.identity
    lost = [r for r in records if isinstance(r, Lost)]
    all_ms = [
        float(r.latency_ms) for r in records if isinstance(r, Rsp) and r.latency_ms is not None
    ]
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        "started": dt.datetime.fromtimestamp(card.started, dt.UTC).isoformat(timespec="seconds"),
        "reader": card.reader,
        "atr": card.wire.atr.hex(" ").upper(),
        "card": None
        if ident is None
        else {"id": ident.card_id, "issuer": ident.issuer, "auth_cert_not_after": ident.not_after},
        "opt_in": {
            "destructive": card.permit.destructive,
            "blocking": card.permit.blocking,
            "min_tries": card.interlocks.min_tries,
        },
        "apdus": card.wire.apdus,
        "cards_lost": len(lost),
        "latency_ms": {
            "all": {
                "count": len(all_ms),
                "p50_ms": round(percentile(all_ms, 50), 3) if all_ms else None,
                "p99_ms": round(percentile(all_ms, 99), 3) if all_ms else None,
            },
            "by_ins": latency_by_ins(records),
        },
        "tests": dict(sorted(card.outcomes.items())),
        "stopped": card.stopped,
        "trace": "trace.jsonl (secrets redacted)",
    }


def summary_text(doc: dict[str, Any]) -> str:
    """A short human summary of a report document."""
    card = doc["card"]
    opt = doc["opt_in"]
    mode = (
        "not opted in (read-only)"
        if not opt["destructive"]
        else "named test card" + (", blocking allowed" if opt["blocking"] else "")
    )
    lines = [
        f"reader   {doc['reader']}",
        f"ATR      {doc['atr']}",
        f"card ID  {card['id'] if card else 'unidentified'}  ({mode})",
        f"APDUs    {doc['apdus']}",
    ]
    for label, s in doc["latency_ms"]["by_ins"].items():
        lines.append(
            f"  {label:<32} n={s['count']:<4} p50 {s['p50_ms']:8.3f} ms  p99 {s['p99_ms']:8.3f} ms"
        )
    counts: dict[str, int] = {}
    for outcome in doc["tests"].values():
        counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        lines.append("tests    " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())))
    if doc["stopped"]:
        lines.append(f"STOPPED  {doc['stopped']}")
    return "\n".join(lines)


def write_report(card: HilCard, directory: Path) -> dict[str, Any]:
    """Write report.json, summary.txt and trace.jsonl into *directory*; return the doc."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = build_report(card)
    (directory / "report.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (directory / "summary.txt").write_text(summary_text(doc) + "\n", encoding="utf-8")
    write_trace(directory / "trace.jsonl", card.wire.records)
    return doc
