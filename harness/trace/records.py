"""Typed trace records: one frozen dataclass per record type, and its JSON object.

The file format stays JSON Lines (see :mod:`harness.trace.recorder`); these classes are what
the code reads and writes. ``to_json()`` gives exactly the object the recorder always wrote,
keys in the same order (``seq``, ``type``, the record's fields, fields this reader does not
know, then ``time``, ``t``, ``clock``), so a trace read and written again is byte-identical.

Readers match on the class and on typed fields: a command's :class:`CommandKind`, ``ins``,
``p1``, ``p2`` come from its header, never from the display ``name``. ``from_json`` expects an
object that :func:`harness.trace.validate.check_record` accepted (on anything else it may
raise ``KeyError`` / ``TypeError`` / ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.trace.decode import CommandKind, decoded

__all__ = [
    "RECORD_TYPES",
    "Cmd",
    "Control",
    "Lost",
    "Meta",
    "Note",
    "Reset",
    "Rsp",
    "TraceRecord",
    "record_from_json",
]

JsonObject = dict[str, Any]

#: Stamps every record may carry; written last (``seq`` first), in this order.
_STAMPS = ("seq", "time", "t", "clock")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Stamped:
    """What the recorder adds to every record: position, wall clock, run time, scenario time."""

    TYPE: ClassVar[str]
    _FIELDS: ClassVar[frozenset[str]]

    seq: int | None = None
    time: str | None = None  # wall clock, UTC, ISO 8601
    t: float | None = None  # seconds since the recording started
    clock: str | None = None  # the scenario's clock, ISO 8601

    def _json(self, body: JsonObject, extra: Mapping[str, Any]) -> JsonObject:
        out: JsonObject = {} if self.seq is None else {"seq": self.seq}
        out["type"] = self.TYPE
        out.update((k, v) for k, v in body.items() if v is not None)
        out.update(extra)
        for name in ("time", "t", "clock"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _stamps(obj: Mapping[str, Any]) -> JsonObject:
    return {k: obj[k] for k in _STAMPS if k in obj}


def _extra(obj: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The fields of *obj* that its type does not define (a newer writer's), in order."""
    return {k: v for k, v in obj.items() if k not in known and k not in _STAMPS and k != "type"}


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex().upper()


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta(_Stamped):
    """The first record: what the trace is, from which transport, card ATR, redaction."""

    TYPE: ClassVar[str] = "meta"
    _FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"format", "version", "transport", "atr", "redacted", "fingerprint", "scenario", "profile"}
    )

    format: str
    version: int
    transport: str | None = None
    atr: bytes | None = None
    redacted: bool | None = None
    fingerprint: str | None = None  # how fingerprints were made (never the key)
    scenario: str | None = None
    profile: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. a HIL run's reader

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Meta:
        return cls(
            format=obj["format"],
            version=obj["version"],
            transport=obj.get("transport"),
            atr=_bytes(obj.get("atr")),
            redacted=obj.get("redacted"),
            fingerprint=obj.get("fingerprint"),
            scenario=obj.get("scenario"),
            profile=obj.get("profile"),
            extra=_extra(obj, cls._FIELDS),
            **_stamps(obj),
        )

    def to_json(self) -> JsonObject:
        return self._json(
            {
                "format": self.format,
                "version": self.version,
                "transport": self.transport,
                "atr": _hex(self.atr),
                "redacted": self.redacted,
                "fingerprint": self.fingerprint,
                "scenario": self.scenario,
                "profile": self.profile,
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Cmd(_Stamped):
    """A command to the card. ``hex`` is as recorded (secret data redacted, or a golden
    file's placeholders); ``kind``, ``cla``, ``ins``, ``p1``, ``p2`` are derived from it
    (``None`` / :attr:`CommandKind.MALFORMED` when it has no 4-byte header). ``app`` / ``ef`` /
    ``pin`` are the selection the command addressed, as far as it was known."""

    TYPE: ClassVar[str] = "cmd"
    _FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"i", "name", "hex", "app", "ef", "pin", "fp", "fpv"}
    )

    i: int  # APDU index in the trace
    hex: str
    name: str | None = None  # for people only: never matched on
    app: str | None = None
    ef: int | None = None
    pin: str | None = None  # PIN name ("auth", "juki", ...), never a value
    fp: str | None = None  # per-trace fingerprint of the secret data
    fpv: Mapping[str, str] | None = None  # fingerprints of its normalised forms
    extra: Mapping[str, Any] = field(default_factory=dict)
    kind: CommandKind = field(init=False)
    cla: int | None = field(init=False)
    ins: int | None = field(init=False)
    p1: int | None = field(init=False)
    p2: int | None = field(init=False)

    def __post_init__(self) -> None:
        kind, cla, ins, p1, p2 = decoded(self.hex)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "cla", cla)
        object.__setattr__(self, "ins", ins)
        object.__setattr__(self, "p1", p1)
        object.__setattr__(self, "p2", p2)

    @property
    def proprietary(self) -> bool:
        """A proprietary class (``CLA`` bit 8): its INS codes are not ISO's."""
        return self.cla is not None and bool(self.cla & 0x80)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cmd:
        ef = obj.get("ef")
        fpv = obj.get("fpv")
        return cls(
            i=obj["i"],
            hex=obj["hex"],
            name=obj.get("name"),
            app=obj.get("app"),
            ef=None if ef is None else int(ef, 16),
            pin=obj.get("pin"),
            fp=obj.get("fp"),
            fpv=None if fpv is None else dict(fpv),
            extra=_extra(obj, cls._FIELDS),
            **_stamps(obj),
        )

    def to_json(self) -> JsonObject:
        return self._json(
            {
                "i": self.i,
                "name": self.name,
                "hex": self.hex,
                "app": self.app,
                "ef": None if self.ef is None else f"{self.ef:04X}",
                "pin": self.pin,
                "fp": self.fp,
                "fpv": None if self.fpv is None else dict(self.fpv),
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rsp(_Stamped):
    """The card's answer to command ``i``: ``hex`` as recorded (data and SW), ``sw``."""

    TYPE: ClassVar[str] = "rsp"
    _FIELDS: ClassVar[frozenset[str]] = frozenset({"i", "hex", "sw", "sw_name", "latency_ms"})

    i: int
    hex: str
    sw: int
    sw_name: str | None = None  # for people only
    latency_ms: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Rsp:
        return cls(
            i=obj["i"],
            hex=obj["hex"],
            sw=int(obj["sw"], 16),
            sw_name=obj.get("sw_name"),
            latency_ms=obj.get("latency_ms"),
            extra=_extra(obj, cls._FIELDS),
            **_stamps(obj),
        )

    def to_json(self) -> JsonObject:
        return self._json(
            {
                "i": self.i,
                "hex": self.hex,
                "sw": f"{self.sw:04X}",
                "sw_name": self.sw_name,
                "latency_ms": self.latency_ms,
            },
            self.extra,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Lost(_Stamped):
    """No answer to command ``i``: the card lost power or went away."""

    TYPE: ClassVar[str] = "lost"
    _FIELDS: ClassVar[frozenset[str]] = frozenset({"i", "error", "latency_ms"})

    i: int
    error: str | None = None
    latency_ms: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Lost:
        return cls(
            i=obj["i"],
            error=obj.get("error"),
            latency_ms=obj.get("latency_ms"),
            extra=_extra(obj, cls._FIELDS),
            **_stamps(obj),
        )

    def to_json(self) -> JsonObject:
        return self._json(
            {"i": self.i, "error": self.error, "latency_ms": self.latency_ms}, self.extra
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reset(_Stamped):
    """The card was reset and answered with a new ATR."""

    TYPE: ClassVar[str] = "reset"
    _FIELDS: ClassVar[frozenset[str]] = frozenset({"atr"})

    atr: bytes
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Reset:
        return cls(atr=bytes.fromhex(obj["atr"]), extra=_extra(obj, cls._FIELDS), **_stamps(obj))

    def to_json(self) -> JsonObject:
        return self._json({"atr": self.atr.hex().upper()}, self.extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(_Stamped):
    """An actor's observation (what an app showed, a kiosk's decision), no APDU.

    ``fields`` are the actor's own, in the order it gave them; the forensics read the two
    with a fixed meaning through :attr:`pin` and :attr:`tries_shown`.
    """

    TYPE: ClassVar[str] = "note"
    _FIELDS: ClassVar[frozenset[str]] = frozenset({"actor", "event"})

    actor: str
    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pin(self) -> str | None:
        """The PIN (its name, never a value) the note is about."""
        value = self.fields.get("pin")
        return value if isinstance(value, str) else None

    @property
    def tries_shown(self) -> int | None:
        """The tries left an app showed the user."""
        value = self.fields.get("tries_shown")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Note:
        return cls(
            actor=obj["actor"], event=obj["event"], fields=_extra(obj, cls._FIELDS), **_stamps(obj)
        )

    def to_json(self) -> JsonObject:
        return self._json({"actor": self.actor, "event": self.event}, self.fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Control(_Stamped):
    """A test control acted on the card (the control panel's clicks): who (``actor``), what
    (``action``: ``set-tries``, ``set-pin``, ``new-card`` ...), and the PIN it touched and
    the tries it left, if any. Never a PIN value."""

    TYPE: ClassVar[str] = "control"
    _FIELDS: ClassVar[frozenset[str]] = frozenset({"actor", "action", "pin", "tries"})

    actor: str
    action: str
    pin: str | None = None  # PIN name, never a value
    tries: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Control:
        return cls(
            actor=obj["actor"],
            action=obj["action"],
            pin=obj.get("pin"),
            tries=obj.get("tries"),
            extra=_extra(obj, cls._FIELDS),
            **_stamps(obj),
        )

    def to_json(self) -> JsonObject:
        return self._json(
            {"actor": self.actor, "action": self.action, "pin": self.pin, "tries": self.tries},
            self.extra,
        )


TraceRecord = Meta | Cmd | Rsp | Lost | Reset | Note | Control

RECORD_TYPES: dict[str, type[TraceRecord]] = {
    cls.TYPE: cls for cls in (Meta, Cmd, Rsp, Lost, Reset, Note, Control)
}


def record_from_json(obj: Mapping[str, Any]) -> TraceRecord:
    """The typed record of one checked JSON object (its ``type`` picks the class)."""
    return RECORD_TYPES[obj["type"]].from_json(obj)
