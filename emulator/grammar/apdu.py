"""Command and response APDUs (ISO/IEC 7816-3 §12.1, 7816-4 §5.1) as construct grammars.

The construct definitions are the reference. :meth:`CommandApdu.from_bytes` and
:meth:`CommandApdu.to_bytes` are a hand-written fast path for the card's hot loop; property
tests (``tests/grammar``) check that they agree with the grammar on generated inputs.

The case of a command is decided from its length, as ISO 7816-3 prescribes::

    len == 4                         case 1    CLA INS P1 P2
    len == 5                         case 2S   ... Le          (Le 00 = 256)
    B1 != 0, len == 5 + B1           case 3S   ... Lc data
    B1 != 0, len == 6 + B1           case 4S   ... Lc data Le
    B1 == 0, len == 7                case 2E   ... 00 Le1 Le2  (0000 = 65536)
    B1 == 0, B2B3 != 0, len == 7+L   case 3E   ... 00 Lc1 Lc2 data
    B1 == 0, B2B3 != 0, len == 9+L   case 4E   ... 00 Lc1 Lc2 data Le1 Le2

Any other length is malformed (the card answers ``6700``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from construct import Bytes as CBytes
from construct import (
    Check,
    Const,
    Construct,
    Container,
    Int8ub,
    Int16ub,
    Select,
    SizeofError,
    Struct,
    Terminated,
    this,
)
from construct.core import stream_read_entire, stream_write

from emulator.grammar.adapters import LeAdapter


class ApduFormatError(ValueError):
    """The byte string is not a well-formed APDU of any ISO case."""


class Case(IntEnum):
    """ISO 7816-3 command cases; extended forms are ``+4`` of the short ones for sorting."""

    C1 = 1
    C2S = 2
    C3S = 3
    C4S = 4
    C2E = 6
    C3E = 7
    C4E = 8


_HEADER = Struct("cla" / Int8ub, "ins" / Int8ub, "p1" / Int8ub, "p2" / Int8ub)

ShortLe = LeAdapter(Int8ub, 0x100)
ExtendedLe = LeAdapter(Int16ub, 0x10000)

CASE1 = Struct("header" / _HEADER, Terminated)
CASE2S = Struct("header" / _HEADER, "le" / ShortLe, Terminated)
CASE3S = Struct(
    "header" / _HEADER,
    "lc" / Int8ub,
    Check(this.lc != 0),
    "data" / CBytes(this.lc),
    Terminated,
)
CASE4S = Struct(
    "header" / _HEADER,
    "lc" / Int8ub,
    Check(this.lc != 0),
    "data" / CBytes(this.lc),
    "le" / ShortLe,
    Terminated,
)
CASE2E = Struct("header" / _HEADER, Const(b"\x00"), "le" / ExtendedLe, Terminated)
CASE3E = Struct(
    "header" / _HEADER,
    Const(b"\x00"),
    "lc" / Int16ub,
    Check(this.lc != 0),
    "data" / CBytes(this.lc),
    Terminated,
)
CASE4E = Struct(
    "header" / _HEADER,
    Const(b"\x00"),
    "lc" / Int16ub,
    Check(this.lc != 0),
    "data" / CBytes(this.lc),
    "le" / ExtendedLe,
    Terminated,
)

#: Case by grammar. The alternatives are mutually exclusive, so order only matters for speed.
CASES: dict[Case, Construct] = {
    Case.C1: CASE1,
    Case.C2S: CASE2S,
    Case.C3S: CASE3S,
    Case.C4S: CASE4S,
    Case.C2E: CASE2E,
    Case.C3E: CASE3E,
    Case.C4E: CASE4E,
}
COMMAND_APDU = Select(*CASES.values())


class _DataBeforeTrailer(Construct):  # type: ignore[misc]
    """All remaining bytes but the last *trailer* ones (the response's data before SW1 SW2)."""

    def __init__(self, trailer: int) -> None:
        super().__init__()
        self.trailer = trailer

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        rest: bytes = stream_read_entire(stream, path)
        if len(rest) < self.trailer:
            raise ApduFormatError(f"response shorter than its {self.trailer}-byte trailer")
        stream.seek(-self.trailer, 1)
        return rest[: len(rest) - self.trailer]

    def _build(self, obj: bytes, stream: Any, context: Any, path: str) -> bytes:
        stream_write(stream, obj, len(obj), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise SizeofError("response data has no fixed size", path=path)


RESPONSE_APDU = Struct("data" / _DataBeforeTrailer(2), "sw" / Int16ub, Terminated)


_new = tuple.__new__


class CommandApdu(NamedTuple):
    """A command APDU. ``le`` is ``None`` when absent; 256 / 65536 mean "all available".

    Immutable. A named tuple rather than a frozen dataclass: the card builds one per APDU, and
    a tuple is built in a third of the time (no ``object.__setattr__`` per field).
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    @property
    def case(self) -> Case:
        if self.le is None:
            base = Case.C3S if self.data else Case.C1
        else:
            base = Case.C4S if self.data else Case.C2S
        return Case(base + 4) if self.extended and base != Case.C1 else base

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandApdu:
        """Fast-path parse; agrees with :data:`COMMAND_APDU` (property-tested). Builds the
        tuple directly: the named tuple's generated ``__new__`` costs three times as much."""
        n = len(raw)
        if n < 4:
            raise ApduFormatError(f"command APDU of {n} bytes is shorter than its header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return _new(cls, (cla, ins, p1, p2, b"", None, False))
        b1 = raw[4]
        if n == 5:
            return _new(cls, (cla, ins, p1, p2, b"", b1 or 0x100, False))
        if b1:
            if n == 5 + b1:
                return _new(cls, (cla, ins, p1, p2, raw[5:], None, False))
            if n == 6 + b1:
                return _new(cls, (cla, ins, p1, p2, raw[5:-1], raw[-1] or 0x100, False))
            raise ApduFormatError(f"short Lc={b1} does not match a {n}-byte APDU")
        if n < 7:  # B1 = 00 opens the 3-byte extended length; a 6-byte APDU has no room
            raise ApduFormatError(f"extended length fields do not fit a {n}-byte APDU")
        if n == 7:
            return _new(cls, (cla, ins, p1, p2, b"", (raw[5] << 8 | raw[6]) or 0x10000, True))
        lc = raw[5] << 8 | raw[6]
        if lc:
            if n == 7 + lc:
                return _new(cls, (cla, ins, p1, p2, raw[7:], None, True))
            if n == 9 + lc:
                return _new(
                    cls, (cla, ins, p1, p2, raw[7:-2], (raw[-2] << 8 | raw[-1]) or 0x10000, True)
                )
        raise ApduFormatError(f"extended length fields do not match a {n}-byte APDU")

    def to_bytes(self) -> bytes:
        """Fast-path build; agrees with :data:`COMMAND_APDU` (property-tested)."""
        cla, ins, p1, p2, data, le, ext = self
        self._validate()
        out = bytes((cla, ins, p1, p2))
        if data:
            out += (b"\x00" + len(data).to_bytes(2, "big") if ext else bytes((len(data),))) + data
        if le is None:
            return out
        if ext:
            return out + (b"" if data else b"\x00") + (le & 0xFFFF).to_bytes(2, "big")
        return out + bytes((le & 0xFF,))

    def _validate(self) -> None:
        cla, ins, p1, p2, data, le, ext = self
        if not (0 <= cla <= 0xFF and 0 <= ins <= 0xFF and 0 <= p1 <= 0xFF and 0 <= p2 <= 0xFF):
            fields = {"cla": cla, "ins": ins, "p1": p1, "p2": p2}
            name = next(n for n, v in fields.items() if not 0 <= v <= 0xFF)
            raise ApduFormatError(f"{name} out of range")
        max_lc, max_le = (0xFFFF, 0x10000) if ext else (0xFF, 0x100)
        if len(data) > max_lc:
            raise ApduFormatError(f"{len(data)} data bytes need an extended APDU")
        if le is not None and not 1 <= le <= max_le:
            raise ApduFormatError(f"Le={le} out of range")
        if ext and not data and le is None:
            raise ApduFormatError("a case-1 APDU has no extended form")

    def __repr__(self) -> str:
        # Data is never shown: it may carry a PIN. Length only.
        le = "" if self.le is None else f" Le={self.le}"
        return (
            f"CommandApdu({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}"
            f" Lc={len(self.data)}{le}{' ext' if self.extended else ''})"
        )


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data then the status word."""

    data: bytes
    sw: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ApduFormatError(f"response APDU of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), raw[-2] << 8 | raw[-1])

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF


# --- The reference path: construct in, dataclass out -------------------------------------

_CASE_OF_STRUCT = {id(v): k for k, v in CASES.items()}


def parse_command(raw: bytes) -> CommandApdu:
    """Parse with the construct grammar (reference path, slower than ``from_bytes``)."""
    for case, grammar in CASES.items():
        try:
            c = grammar.parse(raw)
        except Exception:  # construct raises many kinds; any of them means "not this case"
            continue
        return _from_container(case, c)
    raise ApduFormatError(f"{len(raw)}-byte string is no ISO 7816 command APDU")


def build_command(apdu: CommandApdu) -> bytes:
    """Build with the construct grammar (reference path)."""
    apdu._validate()
    header = {"cla": apdu.cla, "ins": apdu.ins, "p1": apdu.p1, "p2": apdu.p2}
    obj: dict[str, Any] = {"header": header}
    if apdu.data:
        obj.update(lc=len(apdu.data), data=apdu.data)
    if apdu.le is not None:
        obj["le"] = apdu.le
    return bytes(CASES[apdu.case].build(obj))


def parse_response(raw: bytes) -> ResponseApdu:
    """Parse with the construct grammar (reference path)."""
    c = RESPONSE_APDU.parse(raw)
    return ResponseApdu(bytes(c.data), int(c.sw))


def build_response(resp: ResponseApdu) -> bytes:
    return bytes(RESPONSE_APDU.build({"data": resp.data, "sw": resp.sw}))


def _from_container(case: Case, c: Container) -> CommandApdu:
    h = c.header
    return CommandApdu(
        int(h.cla),
        int(h.ins),
        int(h.p1),
        int(h.p2),
        bytes(c.get("data", b"")),
        None if c.get("le") is None else int(c.le),
        case >= Case.C2E,
    )
