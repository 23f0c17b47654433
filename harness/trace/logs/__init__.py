"""APDU logs made by other tools, imported as myna-hil traces (``myna-hil trace import``).

:func:`import_log` reads a log (pcsc-spy's display or raw lines, an OpenSC debug log, or a
plain ``>`` / ``<`` text log; the format is detected, or given), and :func:`to_records` turns
it into trace records through :class:`~harness.trace.recorder.TraceLog`, the same builder
the recorder uses: secret-bearing commands are redacted and fingerprinted on the way in, so
``trace explain`` reads an imported trace as it reads a recorded one. Nothing of the log is
kept but what a recorded trace would hold; errors name a line, never its content.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from harness.trace.logs import opensc, pcsc_spy, plain
from harness.trace.logs.base import MAX_LOG_BYTES, CardReset, LogFormatError, ParsedLog, lines
from harness.trace.recorder import Stamp, TraceLog
from harness.trace.records import TraceRecord

__all__ = [
    "FORMATS",
    "MAX_LOG_BYTES",
    "LogFormatError",
    "LogImportError",
    "ParsedLog",
    "decode_log",
    "detect",
    "import_log",
    "parse",
    "read_log",
    "to_records",
]

#: Format name -> its parser, in the order :func:`detect` tries them.
FORMATS: dict[str, Callable[[str], ParsedLog]] = {
    pcsc_spy.RAW: pcsc_spy.parse_raw,
    pcsc_spy.DISPLAY: pcsc_spy.parse_display,
    opensc.FORMAT: opensc.parse,
    plain.FORMAT: plain.parse,
}
_DETECTORS: dict[str, Callable[[list[str]], bool]] = {
    pcsc_spy.RAW: pcsc_spy.looks_like_raw,
    pcsc_spy.DISPLAY: pcsc_spy.looks_like_display,
    opensc.FORMAT: opensc.looks_like,
    plain.FORMAT: plain.looks_like,
}
#: How many lines :func:`detect` looks at.
SAMPLE_LINES = 400


class LogImportError(Exception):
    """The log cannot be imported; the message is one line naming the file (and the line)."""


def detect(text: str) -> str | None:
    """The format of the log *text*, or ``None`` when it looks like none of them."""
    sample = [line for _, (_, line) in zip(range(SAMPLE_LINES), lines(text), strict=False)]
    for name, looks_like in _DETECTORS.items():
        if looks_like(sample):
            return name
    return None


def read_log(path: Path) -> str:
    """The text of the log at *path* (see :func:`decode_log`)."""
    try:
        size = path.stat().st_size
        if size > MAX_LOG_BYTES:
            raise LogImportError(f"{path}: {size} bytes, larger than a log this reads")
        data = path.read_bytes()
    except OSError as exc:
        raise LogImportError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return decode_log(data, str(path))


def decode_log(data: bytes, name: str) -> str:
    """A log's bytes as text: bytes that are not UTF-8 become U+FFFD (logs carry binary in
    their ASCII columns, which are never read); a NUL byte means it is no text log."""
    if len(data) > MAX_LOG_BYTES:
        raise LogImportError(f"{name}: larger than a log this reads ({MAX_LOG_BYTES} bytes)")
    if b"\0" in data:
        raise LogImportError(f"{name}: a binary file, not a text log")
    return data.decode("utf-8", "replace")


def parse(text: str, fmt: str | None = None, *, name: str = "the log") -> ParsedLog:
    """*text* read as *fmt* (``None``: detected); :class:`LogImportError` on bad input."""
    if fmt is None:
        fmt = detect(text)
        if fmt is None:
            raise LogImportError(
                f"{name}: not a log this can read ({', '.join(FORMATS)}); "
                "pass --format if it is one of them"
            )
    try:
        return FORMATS[fmt](text)
    except LogFormatError as exc:
        where = name if exc.line is None else f"{name} line {exc.line}"
        raise LogImportError(f"{where}: {exc.reason} (reading it as {fmt})") from None


def to_records(log: ParsedLog, source: str) -> list[TraceRecord]:
    """The trace records of *log* (redacted, fingerprinted); *source* names the log file in
    the meta record."""
    transport = f"{log.format} log" + (f" of {log.reader}" if log.reader else "")
    trace = TraceLog(
        transport,
        log.atr,
        meta={"source": source, "source_format": log.format},
    )
    clock = _Clock(log.clock)
    first = next((x.start for x in log.items if x.start is not None), None)
    opened = clock.stamp(first)
    trace.records[0] = dataclasses.replace(trace.records[0], time=opened.time, t=opened.t)
    for item in log.items:
        trace.when = clock.stamp(item.start)
        if isinstance(item, CardReset):
            trace.reset(item.atr or log.atr or b"")
            continue
        cmd = trace.command(item.command)
        if item.response is None:
            trace.lost(cmd.i, item.command, item.error or "no answer", item.latency)
        else:
            trace.answer(cmd.i, item.command, item.response, item.latency)
    return trace.records


def import_log(path: Path, fmt: str | None = None) -> list[TraceRecord]:
    """Read, parse and convert the log at *path*: its trace records."""
    log = parse(read_log(path), fmt, name=str(path))
    return to_records(log, path.name)


class _Clock:
    """Turns a log's start times into stamps: ``t`` from its first time, ``time`` when the
    log has dates (``epoch``); a time-of-day clock (``day``) that passes midnight goes on."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind
        self.t0: float | None = None
        self.days = 0.0
        self.last: float | None = None

    def stamp(self, start: float | None) -> Stamp:
        if start is None or self.kind is None:
            return Stamp(None, None)
        if self.kind == "day":
            if self.last is not None and start + self.days < self.last - 43200:
                self.days += 86400
            start += self.days
        self.last = start
        if self.t0 is None:
            self.t0 = start
        when = None
        if self.kind == "epoch":
            when = dt.datetime.fromtimestamp(start, dt.UTC).isoformat(timespec="microseconds")
        return Stamp(when, round(start - self.t0, 6))
