"""BER-TLV objects stored on the card, and the JPKI token-info record.

Only what the My Number Card uses: one- and two-byte tags (``5F51``, ``DF21``.., ``FF20``),
definite lengths in the short form and the ``81``/``82`` long forms (ISO 7816-4 §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from construct import (
    Adapter,
    Bytes,
    Construct,
    GreedyRange,
    IfThenElse,
    Int8ub,
    Int16ub,
    Int32ub,
    Peek,
    Rebuild,
    SizeofError,
    Struct,
    Terminated,
    this,
)
from construct.core import stream_read, stream_write

from emulator.grammar.apdu import ApduFormatError


class _BerLength(Construct):  # type: ignore[misc]
    """Definite BER length: ``0xxxxxxx``, ``81 xx`` or ``82 xx xx``."""

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        first: int = stream_read(stream, 1, path)[0]
        if first < 0x80:
            return first
        if first in (0x81, 0x82):
            n = first & 0x7F
            raw: bytes = stream_read(stream, n, path)
            return int.from_bytes(raw, "big")
        raise ApduFormatError(f"unsupported BER length byte {first:02X}")

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        if obj < 0x80:
            enc = bytes((obj,))
        elif obj <= 0xFF:
            enc = b"\x81" + bytes((obj,))
        elif obj <= 0xFFFF:
            enc = b"\x82" + obj.to_bytes(2, "big")
        else:
            raise ApduFormatError(f"BER length {obj} too large")
        stream_write(stream, enc, len(enc), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise SizeofError("BER length is variable", path=path)


BER_LENGTH = _BerLength()

#: A tag is two bytes when the low five bits of its first byte are all set (ISO 7816-4).
#: When building, ``tag >> 8`` is that first byte for two-byte tags and 0 for one-byte tags.
BER_TAG = Struct(
    "first" / Rebuild(Peek(Int8ub), this.tag >> 8),
    "tag" / IfThenElse((this.first & 0x1F) == 0x1F, Int16ub, Int8ub),
)

TLV = Struct(
    "tag" / BER_TAG,
    "length" / BER_LENGTH,
    "value" / Bytes(this.length),
)
TLV_SEQUENCE = Struct("objects" / GreedyRange(TLV), Terminated)


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    def to_bytes(self) -> bytes:
        return bytes(TLV.build({"tag": {"tag": self.tag}, "length": len(self.value),
                                "value": self.value}))


def parse_tlvs(raw: bytes) -> list[Tlv]:
    """Parse a concatenation of TLV objects (nothing may follow the last one)."""
    try:
        c = TLV_SEQUENCE.parse(raw)
    except ApduFormatError:
        raise
    except Exception as exc:
        raise ApduFormatError(f"malformed BER-TLV: {exc}") from None
    return [Tlv(int(o.tag.tag), bytes(o.value)) for o in c.objects]


def build_tlvs(objects: list[Tlv]) -> bytes:
    return b"".join(o.to_bytes() for o in objects)


# --- JPKI token info (EF 0006) -------------------------------------------------------------


class SpacePadded(Adapter):  # type: ignore[misc]
    """ASCII text right-padded with spaces to the field's width (PKCS#11 style)."""

    def __init__(self, width: int) -> None:
        super().__init__(Bytes(width))
        self.width = width

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return obj.decode("ascii").rstrip(" ")

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        raw = obj.encode("ascii")
        if len(raw) > self.width:
            raise ApduFormatError(f"{obj!r} is longer than {self.width} characters")
        return raw.ljust(self.width, b" ")


#: [model] CK_TOKEN_INFO-like layout. The card is known to start EF 0006 with the label
#: ``JPKIAPICCTOKEN2`` padded to 32; the fields after it are this project's model.
TOKEN_INFO = Struct(
    "label" / SpacePadded(32),
    "manufacturer_id" / SpacePadded(32),
    "model" / SpacePadded(16),
    "serial_number" / SpacePadded(16),
    "flags" / Int32ub,
)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    label: str
    manufacturer_id: str = ""
    model: str = ""
    serial_number: str = ""
    flags: int = 0

    def to_bytes(self) -> bytes:
        return bytes(TOKEN_INFO.build({
            "label": self.label, "manufacturer_id": self.manufacturer_id,
            "model": self.model, "serial_number": self.serial_number, "flags": self.flags,
        }))

    @classmethod
    def from_bytes(cls, raw: bytes) -> TokenInfo:
        c = TOKEN_INFO.parse(raw)
        return cls(str(c.label), str(c.manufacturer_id), str(c.model),
                   str(c.serial_number), int(c.flags))
