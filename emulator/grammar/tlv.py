"""BER-TLV objects stored on the card, and the JPKI token-info record.

Only what the My Number Card uses: one- and two-byte tags (``5F51``, ``DF21``.., ``FF20``),
definite lengths in the short form and the ``81``/``82`` long forms (ISO 7816-4 §5.2).
"""

from __future__ import annotations

import functools
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
        return bytes(
            TLV.build({"tag": {"tag": self.tag}, "length": len(self.value), "value": self.value})
        )


def parse_tlvs(raw: bytes) -> list[Tlv]:
    """Parse a concatenation of TLV objects (nothing may follow the last one)."""
    return list(_parse_tlvs(bytes(raw)))


@functools.lru_cache(maxsize=64)
def _parse_tlvs(raw: bytes) -> tuple[Tlv, ...]:
    """Memoised: a run reads the same few card files again and again, and construct takes
    about 100 µs for one of them."""
    try:
        c = TLV_SEQUENCE.parse(raw)
    except ApduFormatError:
        raise
    except Exception as exc:
        raise ApduFormatError(f"malformed BER-TLV: {exc}") from None
    return tuple(Tlv(int(o.tag.tag), bytes(o.value)) for o in c.objects)


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


#: PKCS#11 ``CK_TOKEN_INFO`` with 4-byte big-endian ``CK_ULONG``s: 160 bytes, the size of EF
#: 0006 on a real card, which starts with the label ``JPKIAPICCTOKEN2`` padded to 32 and
#: carries flags ``04 0D`` and PIN lengths 6/16 [card] (docs/card.md#jpki-files). The
#: manufacturer, model, serial, counts, memory sizes and time are this project's [model].
TOKEN_INFO = Struct(
    "label" / SpacePadded(32),
    "manufacturer_id" / SpacePadded(32),
    "model" / SpacePadded(16),
    "serial_number" / SpacePadded(16),
    "flags" / Int32ub,
    "max_session_count" / Int32ub,
    "session_count" / Int32ub,
    "max_rw_session_count" / Int32ub,
    "rw_session_count" / Int32ub,
    "max_pin_len" / Int32ub,
    "min_pin_len" / Int32ub,
    "total_public_memory" / Int32ub,
    "free_public_memory" / Int32ub,
    "total_private_memory" / Int32ub,
    "free_private_memory" / Int32ub,
    "hardware_version" / Bytes(2),
    "firmware_version" / Bytes(2),
    "utc_time" / SpacePadded(16),
)
TOKEN_INFO_SIZE = 160


@dataclass(frozen=True, slots=True)
class TokenInfo:
    label: str
    manufacturer_id: str = ""
    model: str = ""
    serial_number: str = ""
    flags: int = 0
    max_pin_len: int = 0
    min_pin_len: int = 0
    hardware_version: bytes = b"\x00\x00"
    firmware_version: bytes = b"\x00\x00"

    def to_bytes(self) -> bytes:
        return bytes(
            TOKEN_INFO.build(
                {
                    "label": self.label,
                    "manufacturer_id": self.manufacturer_id,
                    "model": self.model,
                    "serial_number": self.serial_number,
                    "flags": self.flags,
                    "max_session_count": 0,
                    "session_count": 0,
                    "max_rw_session_count": 0,
                    "rw_session_count": 0,
                    "max_pin_len": self.max_pin_len,
                    "min_pin_len": self.min_pin_len,
                    "total_public_memory": 0,
                    "free_public_memory": 0,
                    "total_private_memory": 0,
                    "free_private_memory": 0,
                    "hardware_version": self.hardware_version,
                    "firmware_version": self.firmware_version,
                    "utc_time": "",
                }
            )
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> TokenInfo:
        c = TOKEN_INFO.parse(raw)
        return cls(
            str(c.label),
            str(c.manufacturer_id),
            str(c.model),
            str(c.serial_number),
            int(c.flags),
            int(c.max_pin_len),
            int(c.min_pin_len),
            bytes(c.hardware_version),
            bytes(c.firmware_version),
        )
