"""Human and JSON rendering of scenario results for ``myna-hil run``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from harness.cli.errors import UsageError
from harness.scenarios.base import REGISTRY, ScenarioResult

OK, FAIL, SKIP = "✓", "✗", "-"
#: The marks on a terminal that cannot show ✓ / ✗ (``PYTHONIOENCODING=ascii``, a C locale).
ASCII_OK, ASCII_FAIL = "ok", "FAIL"
STEP_W, EXPECTED_W = 40, 62
#: Characters the human output uses beyond ASCII.
_UNICODE_SAMPLE = "✓✗…·—µ"


def can_encode(stream: TextIO | None, text: str = _UNICODE_SAMPLE) -> bool:
    """Whether *stream* (default: the current ``sys.stdout``) can write *text*."""
    stream = stream if stream is not None else sys.stdout
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def marks(stream: TextIO | None = None) -> tuple[str, str]:
    """(pass, fail) marks for *stream* (default ``sys.stdout``): ✓ / ✗, or ASCII words."""
    return (OK, FAIL) if can_encode(stream, OK + FAIL) else (ASCII_OK, ASCII_FAIL)


def tolerate_encoding(*streams: TextIO) -> None:
    """Let *streams* replace what their encoding cannot show instead of raising mid-output
    (a trace note in Japanese on an ASCII terminal); ✓ / ✗ get ASCII words via :func:`marks`."""
    for stream in streams:
        if not can_encode(stream) and isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="replace")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_result(result: ScenarioResult, *, steps: bool = True) -> str:
    """One scenario as a compact table: step, expected, got (``=`` when equal), ✓/✗."""
    base = result.unit.partition("@")[0]
    summary = REGISTRY[base].summary if base in REGISTRY else ""
    if result.skipped:
        return f"{SKIP} {result.unit}  skipped: {result.skipped}"
    ok, fail = marks()
    mark = ok if result.ok else fail
    head = (
        f"{mark} {result.unit}  {summary}  "
        f"({len(result.steps)} steps, {result.apdus} APDUs, {result.seconds * 1000:.0f} ms)"
    )
    lines = [head]
    shown = result.steps if steps else tuple(s for s in result.steps if not s.ok)
    sw = min(STEP_W, max((len(s.step) for s in shown), default=4))
    ew = min(EXPECTED_W, max((len(s.expected) for s in shown), default=8))
    if shown:
        lines.append(f"    {'step':<{sw + 2}}  {'expected':<{ew}}  got")
    for s in shown:
        got = "=" if s.ok else s.got
        lines.append(
            f"    {ok if s.ok else fail} {_cut(s.step, sw):<{sw}}  "
            f"{_cut(s.expected, ew):<{ew}}  {got}"
        )
    if result.error:
        lines.append(f"    {fail} stopped: {result.error}")
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
    dash = "—" if can_encode(None, "—") else "-"
    return (
        f"{len(results)} scenario units: {', '.join(parts)} {dash} {apdus} APDUs in {seconds:.2f} s"
    )


def to_json(results: Sequence[ScenarioResult], seconds: float, transport: str) -> dict[str, Any]:
    return {
        "format": "myna-hil-results",
        "version": 1,
        "transport": transport,
        "seconds": round(seconds, 4),
        "ok": all(r.ok or r.skipped for r in results),
        "units": [
            {
                "unit": r.unit,
                "profile": r.profile,
                "ok": r.ok,
                "seconds": round(r.seconds, 4),
                "apdus": r.apdus,
                "error": r.error,
                "skipped": r.skipped,
                "steps": [
                    {"step": s.step, "expected": s.expected, "got": s.got, "ok": s.ok}
                    for s in r.steps
                ],
            }
            for r in results
        ],
    }


#: The ``--json`` / ``--junit`` argument that means standard output.
STDOUT = "-"


def json_text(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def emit(target: str, text: str, stdout: TextIO | None = None, option: str = "--json") -> None:
    """Write *text* to the file *target*, or to standard output when it is ``-`` (*stdout*:
    the real one, when the human output went to stderr); :class:`UsageError` naming *option*
    when the file cannot be written."""
    if target == STDOUT:
        stream = stdout or sys.stdout
        stream.write(text)
        stream.flush()
        return
    try:
        write_text(Path(target), text)
    except OSError as exc:
        raise UsageError(
            f"{option} {target}: cannot write: {exc.strerror or type(exc).__name__}"
        ) from None


def check_target(target: str | None, option: str = "--json") -> None:
    """Refuse a directory as *target* before any work is done, not after it."""
    if target not in (None, STDOUT) and Path(target).is_dir():
        raise UsageError(f"{option} {target}: is a directory, not a file")


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write *doc* to *path* whole or not at all (see :func:`write_text`)."""
    write_text(path, json_text(doc))


def write_text(path: Path, text: str) -> None:
    """Write *text* to *path* whole or not at all (through a temporary file and a rename), so
    a full disk leaves no truncated results; raises :class:`OSError`."""
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


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
