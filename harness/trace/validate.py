"""Reading a trace file with every record checked, so bad input is one line, never a crash.

A trace comes from disk and may be truncated, hand-edited, binary or hostile. Every record is
checked against the fields the readers (``trace show`` / ``explain`` / ``replay``) use, and
the first problem raises :class:`TraceFormatError` naming the file, the line and the field.
A field's value is never quoted: ``hex`` and friends carry APDU data, which may hold a PIN in
an unredacted trace. Checked records become typed ones (:mod:`harness.trace.records`).

The meta record's ``version`` says which format the file is in. A file of an older version
is brought up to :data:`TRACE_VERSION` record by record through :data:`MIGRATIONS` before it
is checked; a newer one, or one older than any migration reaches, is refused in one line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.trace.records import TraceRecord, record_from_json

__all__ = [
    "MAX_TRACE_BYTES",
    "MIGRATIONS",
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "TraceFormatError",
    "check_record",
    "parse_trace",
]

TRACE_FORMAT = "myna-hil-trace"
#: The version this code writes; bump it (and add a migration) when the JSON form changes.
TRACE_VERSION = 1
#: Larger files are refused before they are read (a scenario trace is a few hundred KiB).
MAX_TRACE_BYTES = 256 * 1024 * 1024

_Json = dict[str, Any]  # one decoded line, before it is checked
#: ``MIGRATIONS[v]`` turns one record (any JSON object, unchecked) of version ``v`` into
#: version ``v + 1``; the reader sets the meta record's ``version``. Empty: version 1 is the
#: only format there has been.
MIGRATIONS: dict[int, Callable[[_Json], _Json]] = {}


def _oldest_readable() -> int:
    """The oldest version the migrations bring up to :data:`TRACE_VERSION`."""
    v = TRACE_VERSION
    while v - 1 in MIGRATIONS:
        v -= 1
    return v


class TraceFormatError(ValueError):
    """The file is not a myna-hil trace (the message says where: file, line and field)."""


_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_SW = re.compile(r"[0-9A-Fa-f]{4}")
#: APDU hex as traces hold it: hex digits, spaces and ``<redacted 4 bytes>`` / ``<cryptogram>``
#: placeholders (redacted commands, normalised golden answers). No control characters.
#: One character or one placeholder per repetition (nothing nested: no backtracking blow-up).
_APDU = re.compile(r"(?:[0-9A-Fa-f ]|<[a-z]+(?: [0-9]+ bytes)?>)*")


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _str(v: object) -> bool:
    return isinstance(v, str)


def _text(v: object) -> bool:
    return isinstance(v, str) and v.isprintable()


def _hex(v: object) -> bool:
    return isinstance(v, str) and _HEX.fullmatch(v) is not None


def _sw(v: object) -> bool:
    return isinstance(v, str) and _SW.fullmatch(v) is not None


def _apdu(v: object) -> bool:
    return isinstance(v, str) and _APDU.fullmatch(v) is not None


def _bool(v: object) -> bool:
    return isinstance(v, bool)


def _strings(v: object) -> bool:
    return isinstance(v, dict) and all(_text(k) and _text(x) for k, x in v.items())


Check = tuple[Callable[[object], bool], str]
_INT: Check = (_int, "must be a non-negative integer")
_NUMBER: Check = (_number, "must be a finite number")
_STR: Check = (_str, "must be a string")
_TEXT: Check = (_text, "must be a string of printable characters")
_HEXDATA: Check = (_hex, "must be an even number of hex digits")
_SW4: Check = (_sw, "must be 4 hex digits")
_APDU_HEX: Check = (_apdu, "must be APDU hex (hex digits, spaces, <...> placeholders)")
_BOOL: Check = (_bool, "must be true or false")
_FPV: Check = (_strings, "must be an object of strings")

#: Fields every record may have.
_COMMON: dict[str, Check] = {"seq": _INT, "time": _STR, "t": _NUMBER, "clock": _STR}
#: Per type: (required fields, optional fields).
_FIELDS: dict[str, tuple[dict[str, Check], dict[str, Check]]] = {
    "meta": (
        {"format": _STR, "version": _INT},
        {
            "atr": _HEXDATA,
            "redacted": _BOOL,
            "scenario": _TEXT,
            "transport": _TEXT,
            "profile": _TEXT,
            "fingerprint": _TEXT,
        },
    ),
    "cmd": (
        {"i": _INT, "hex": _APDU_HEX},
        {"name": _TEXT, "app": _TEXT, "ef": _SW4, "pin": _TEXT, "fp": _TEXT, "fpv": _FPV},
    ),
    "rsp": ({"i": _INT, "hex": _APDU_HEX, "sw": _SW4}, {"sw_name": _TEXT, "latency_ms": _NUMBER}),
    "lost": ({"i": _INT}, {"error": _TEXT, "latency_ms": _NUMBER}),
    "reset": ({"atr": _HEXDATA}, {}),
    "note": ({"actor": _TEXT, "event": _TEXT}, {"pin": _TEXT, "tries_shown": _INT}),
    "control": ({"actor": _TEXT, "action": _TEXT}, {"pin": _TEXT, "tries": _INT}),
}
_TYPES = ", ".join(sorted(_FIELDS))


def check_record(rec: object, first: bool) -> str | None:
    """What is wrong with *rec* (one decoded line), or ``None``; *first*: the file's first."""
    if not isinstance(rec, dict):
        return "not a JSON object (a trace record)"
    kind = rec.get("type")
    if kind is None:
        return "field 'type' is missing"
    if not isinstance(kind, str) or kind not in _FIELDS:
        return f"field 'type' must be one of {_TYPES}"
    if first != (kind == "meta"):
        return (
            "not a myna-hil-trace file (no meta record first)"
            if first
            else "a meta record may only be the first line"
        )
    required, optional = _FIELDS[kind]
    for name in required:
        if name not in rec:
            return f"{kind} record: field '{name}' is missing"
    for name, value in rec.items():
        check = required.get(name) or optional.get(name) or _COMMON.get(name)
        if check is None:  # a note's own fields, or a newer writer's: not read here
            if not (isinstance(name, str) and name.isprintable()):
                return f"{kind} record: a field name is not printable"
            continue
        ok, rule = check
        if not ok(value):
            return f"field '{name}' {rule}"
    if kind == "meta":
        if rec["format"] != TRACE_FORMAT:
            return f"not a {TRACE_FORMAT} file (field 'format')"
        if rec["version"] > TRACE_VERSION:
            return f"trace version {rec['version']} is too new (this reader: {TRACE_VERSION})"
        if rec["version"] < _oldest_readable():
            return (
                f"trace version {rec['version']} is too old "
                f"(this reader: {_oldest_readable()} to {TRACE_VERSION})"
            )
    return None


def _migrate(rec: object, version: int) -> object:
    """*rec* (one decoded line of a version-*version* file) in the current format."""
    if not isinstance(rec, dict):
        return rec  # check_record says what is wrong with it
    for v in range(version, TRACE_VERSION):
        rec = MIGRATIONS[v](rec)
        if rec.get("type") == "meta":
            rec["version"] = v + 1
    return rec


def parse_trace(path: Path) -> list[TraceRecord]:
    """Load, migrate and check the trace at *path*, as typed records;
    :class:`TraceFormatError` on the first problem."""
    try:
        size = path.stat().st_size
        if size > MAX_TRACE_BYTES:
            raise TraceFormatError(f"{path}: {size} bytes, larger than a trace can be")
        data = path.read_bytes()
    except OSError as exc:
        raise TraceFormatError(
            f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not data.strip():
        raise TraceFormatError(f"{path}: empty file, not a {TRACE_FORMAT} file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TraceFormatError(f"{path} line {line}: not UTF-8 text (a binary file?)") from None
    records: list[TraceRecord] = []
    version = TRACE_VERSION
    # split("\n"), not splitlines(): U+2028 & co. are legal inside a JSON string.
    for n, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TraceFormatError(f"{path} line {n}: not JSON ({exc.msg})") from None
        except (ValueError, RecursionError):  # e.g. a 5000-digit number, nesting too deep
            raise TraceFormatError(f"{path} line {n}: not JSON a trace can hold") from None
        first = not records
        if first:  # the version, before anything is migrated
            problem = check_record(rec, first=True)
            if problem:
                raise TraceFormatError(f"{path} line {n}: {problem}")
            version = rec["version"]
        try:
            rec = _migrate(rec, version)
        except (KeyError, TypeError, ValueError, AttributeError):  # a line too broken to migrate
            raise TraceFormatError(
                f"{path} line {n}: cannot bring this version-{version} record up to version "
                f"{TRACE_VERSION}"
            ) from None
        problem = check_record(rec, first=first)
        if problem:
            raise TraceFormatError(f"{path} line {n}: {problem}")
        assert isinstance(rec, dict)  # check_record accepted it
        records.append(record_from_json(rec))
    return records
