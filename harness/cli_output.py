"""Human and JSON rendering of scenario results for ``myna-hil run``."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from harness.scenarios.base import REGISTRY, ScenarioResult

logger = logging.getLogger(__name__)

OK, FAIL, SKIP = "✓", "✗", "-"
STEP_W, EXPECTED_W = 40, 62


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_result(result: ScenarioResult, *, steps: bool = True) -> str:
    """One scenario as a compact table: step, expected, got (``=`` when equal), ✓/✗."""
    base = result.unit.partition("@")[0]
    summary = REGISTRY[base].summary if base in REGISTRY else ""
    if result.skipped:
        return f"{SKIP} {result.unit}  skipped: {result.skipped}"
    mark = OK if result.ok else FAIL
    head = (f"{mark} {result.unit}  {summary}  "
            f"({len(result.steps)} steps, {result.apdus} APDUs, {result.seconds * 1000:.0f} ms)")
    lines = [head]
    shown = result.steps if steps else tuple(s for s in result.steps if not s.ok)
    sw = min(STEP_W, max((len(s.step) for s in shown), default=4))
    ew = min(EXPECTED_W, max((len(s.expected) for s in shown), default=8))
    if shown:
        lines.append(f"    {'step':<{sw + 2}}  {'expected':<{ew}}  got")
    for s in shown:
        got = "=" if s.ok else s.got
        lines.append(f"    {OK if s.ok else FAIL} {_cut(s.step, sw):<{sw}}  "
                     f"{_cut(s.expected, ew):<{ew}}  {got}")
    if result.error:
        lines.append(f"    {FAIL} stopped: {result.error}")
    return "\n".join(lines)


def summary_line(results: Sequence[ScenarioResult], seconds: float) -> str:
    passed = sum(r.ok for r in results)
    skipped = sum(r.skipped is not None for r in results)
    failed = len(results) - passed - skipped
    apdus = sum(r.apdus for r in results)
    parts = [f"{passed} passed"]
    if failed:
        parts.append(f"{failed} FAILED")
    if skipped:
        parts.append(f"{skipped} skipped")
    return (f"{len(results)} scenario units: {', '.join(parts)} — "
            f"{apdus} APDUs in {seconds:.2f} s")


def to_json(results: Sequence[ScenarioResult], seconds: float, transport: str) -> dict[str, Any]:
    return {
        "format": "myna-hil-results", "version": 1, "transport": transport,
        "seconds": round(seconds, 4), "ok": all(r.ok or r.skipped for r in results),
        "units": [{
            "unit": r.unit, "profile": r.profile, "ok": r.ok, "seconds": round(r.seconds, 4),
            "apdus": r.apdus, "error": r.error, "skipped": r.skipped,
            "steps": [{"step": s.step, "expected": s.expected, "got": s.got, "ok": s.ok}
                      for s in r.steps],
        } for r in results],
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


class Progress:
    """``[ 3/22] kiosk-reset-auth`` on stderr, rewritten in place; silent unless a TTY."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()

    def __call__(self, done: int, total: int, name: str) -> None:
        if not self.enabled:
            return
        if done >= total:
            self.stream.write("\r\033[K")
        else:
            self.stream.write(f"\r\033[K[{done + 1:>2}/{total}] {name}")
        self.stream.flush()
