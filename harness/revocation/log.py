"""The revocation service's log: every lifecycle event and every answer it gave.

JSON Lines, like a trace, and as strict: a header record names the format and its version,
every record is checked field by field, and a problem is one line naming the file, the line
and the field (never a value). ``myna-hil trace explain TRACE --service-log LOG`` reads it
beside a trace: the trace shows what the card did, this log what the service said.

Records (``seq`` increasing, ``clock`` the service's time, ISO 8601):

- ``meta``      first line: ``format``, ``version``, ``service``.
- ``issued``    a certificate was registered: ``kind`` (``sign`` / ``auth``), ``serial``
  (hex), ``expires``.
- ``revoked``   a lifecycle event: ``kind``, ``serial``, ``status`` (``revoked`` / ``hold``),
  ``reason`` (X.509 reason name), ``cause`` (the event in words), ``revoked_at``.
- ``decision``  an answer: ``via`` (``ocsp`` / ``crl``), ``status`` (OCSP: ``good``,
  ``revoked``, ``hold``, ``unknown``; a CRL: ``served``, its entries counted in ``detail``;
  either: ``error``), and as far as known ``kind``, ``serial``, ``reason``, ``revoked_at``,
  ``cause``, ``detail`` (an error's reason).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.clock import Clock

SERVICE_LOG_FORMAT = "myna-hil-service-log"
#: The version this code writes; a newer file is refused.
SERVICE_LOG_VERSION = 1
MAX_LOG_BYTES = 64 * 1024 * 1024

_SERIAL = re.compile(r"[0-9A-F]{1,40}")
STATUSES = ("good", "revoked", "hold", "unknown", "error", "served")


class ServiceLogError(ValueError):
    """A service log that cannot be read; the message is one line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceEvent:
    """One record of the log (the header excluded)."""

    seq: int
    type: str  # issued | revoked | decision
    clock: dt.datetime
    kind: str | None = None
    serial: int | None = None
    status: str | None = None
    reason: str | None = None
    cause: str | None = None
    revoked_at: dt.datetime | None = None
    expires: dt.datetime | None = None
    via: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "type": self.type}
        for name in (
            "kind",
            "serial",
            "status",
            "reason",
            "cause",
            "revoked_at",
            "expires",
            "via",
            "detail",
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            elif name == "serial":
                value = f"{value:X}"
            out[name] = value
        out["clock"] = self.clock.isoformat()
        return out


class ServiceLog:
    """The log in memory; the service appends, :meth:`save` writes it."""

    def __init__(self, clock: Clock, service: str = "myna-hil TEST revocation service") -> None:
        self.clock = clock
        self.service = service
        self.events: list[ServiceEvent] = []

    def event(self, type: str, **fields: Any) -> ServiceEvent:
        rec = ServiceEvent(seq=len(self.events) + 1, type=type, clock=self.clock.now(), **fields)
        self.events.append(rec)
        return rec

    def decision(self, via: str, status: str, **fields: Any) -> ServiceEvent:
        return self.event("decision", via=via, status=status, **fields)

    def dumps(self) -> str:
        head = {
            "seq": 0,
            "type": "meta",
            "format": SERVICE_LOG_FORMAT,
            "version": SERVICE_LOG_VERSION,
            "service": self.service,
        }
        lines = [head, *(e.to_json() for e in self.events)]
        return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.dumps(), encoding="utf-8")
        return path


# --- reading -----------------------------------------------------------------------------


def _text(v: object) -> bool:
    return isinstance(v, str) and v.isprintable()


def _time(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return dt.datetime.fromisoformat(v).tzinfo is not None
    except ValueError:
        return False


def _serial(v: object) -> bool:
    return isinstance(v, str) and _SERIAL.fullmatch(v) is not None


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _one_of(*values: str) -> Callable[[object], bool]:
    return lambda v: v in values


_Check = tuple[Callable[[object], bool], str]
_TEXT: _Check = (_text, "must be a string of printable characters")
_TIME: _Check = (_time, "must be an ISO 8601 time with a time zone")
_SERIALHEX: _Check = (_serial, "must be upper-case hex digits (a serial number)")
_KIND: _Check = (_one_of("sign", "auth"), "must be 'sign' or 'auth'")
_STATUS: _Check = (_one_of(*STATUSES), f"must be one of {', '.join(STATUSES)}")
_VIA: _Check = (_one_of("ocsp", "crl"), "must be 'ocsp' or 'crl'")
_COMMON: dict[str, _Check] = {"seq": (_int, "must be a non-negative integer"), "clock": _TIME}
_FIELDS: dict[str, tuple[dict[str, _Check], dict[str, _Check]]] = {
    "issued": ({"kind": _KIND, "serial": _SERIALHEX}, {"expires": _TIME}),
    "revoked": (
        {"kind": _KIND, "serial": _SERIALHEX, "status": _STATUS, "revoked_at": _TIME},
        {"reason": _TEXT, "cause": _TEXT},
    ),
    "decision": (
        {"via": _VIA, "status": _STATUS},
        {
            "kind": _KIND,
            "serial": _SERIALHEX,
            "reason": _TEXT,
            "cause": _TEXT,
            "revoked_at": _TIME,
            "detail": _TEXT,
        },
    ),
}


def _check_meta(rec: dict[str, Any]) -> str | None:
    if rec.get("type") != "meta":
        return f"not a {SERVICE_LOG_FORMAT} file (no meta record first)"
    if rec.get("format") != SERVICE_LOG_FORMAT:
        return f"not a {SERVICE_LOG_FORMAT} file (field 'format')"
    version = rec.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return "field 'version' must be a non-negative integer"
    if version > SERVICE_LOG_VERSION or version < 1:
        return (
            f"service log version {version} is not readable here "
            f"(this reader: {SERVICE_LOG_VERSION})"
        )
    return None


def check_event(rec: object) -> str | None:
    """What is wrong with *rec* (one decoded line after the header), or ``None``."""
    if not isinstance(rec, dict):
        return "not a JSON object (a service log record)"
    kind = rec.get("type")
    if kind not in _FIELDS:
        return f"field 'type' must be one of {', '.join(_FIELDS)}"
    required, optional = _FIELDS[kind]
    for name in (*required, *_COMMON):
        if name not in rec:
            return f"{kind} record: field '{name}' is missing"
    for name, value in rec.items():
        if name == "type":
            continue
        check = required.get(name) or optional.get(name) or _COMMON.get(name)
        if check is None:
            return f"{kind} record: unknown field" + (f" '{name}'" if _text(name) else "")
        ok, rule = check
        if not ok(value):
            return f"field '{name}' {rule}"
    return None


def _event(rec: dict[str, Any]) -> ServiceEvent:
    times = {k: dt.datetime.fromisoformat(rec[k]) for k in ("revoked_at", "expires") if k in rec}
    return ServiceEvent(
        seq=rec["seq"],
        type=rec["type"],
        clock=dt.datetime.fromisoformat(rec["clock"]),
        kind=rec.get("kind"),
        serial=int(rec["serial"], 16) if "serial" in rec else None,
        status=rec.get("status"),
        reason=rec.get("reason"),
        cause=rec.get("cause"),
        via=rec.get("via"),
        detail=rec.get("detail"),
        **times,
    )


def parse_service_log(path: Path) -> list[ServiceEvent]:
    """The events of the service log at *path*; :class:`ServiceLogError` on the first problem."""
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            raise ServiceLogError(f"{path}: larger than a service log can be")
        data = path.read_bytes()
    except OSError as exc:
        raise ServiceLogError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceLogError(f"{path}: not UTF-8 text (a binary file?)") from None
    events: list[ServiceEvent] = []
    seen_meta = False
    for n, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except (ValueError, RecursionError):
            raise ServiceLogError(f"{path} line {n}: not JSON") from None
        if not seen_meta:
            problem = (
                _check_meta(rec)
                if isinstance(rec, dict)
                else f"not a {SERVICE_LOG_FORMAT} file (no meta record first)"
            )
        elif isinstance(rec, dict) and rec.get("type") == "meta":
            problem = "a meta record may only be the first line"
        else:
            problem = check_event(rec)
        if problem:
            raise ServiceLogError(f"{path} line {n}: {problem}")
        if seen_meta:
            events.append(_event(rec))
        seen_meta = True
    if not seen_meta:
        raise ServiceLogError(f"{path}: empty file, not a {SERVICE_LOG_FORMAT} file")
    return events


def events_of(log: ServiceLog | Sequence[ServiceEvent]) -> list[ServiceEvent]:
    return list(log.events if isinstance(log, ServiceLog) else log)


__all__ = [
    "SERVICE_LOG_FORMAT",
    "SERVICE_LOG_VERSION",
    "ServiceEvent",
    "ServiceLog",
    "ServiceLogError",
    "check_event",
    "events_of",
    "parse_service_log",
]
