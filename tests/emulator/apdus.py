"""APDU builders (hex) and read helpers for the behaviour tests; values from docs/card.md."""

from __future__ import annotations

from tests.conftest import Link

JPKI = "D392F000260100000001"
TEXT = "D3921000310001010408"
SURFACE = "D3921000310001010402"
JUKI = "D3921000310001010401"
COMMON = "D3921000310001010100"

OK = 0x9000


def select_app(aid: str) -> str:
    return f"00A4040C{len(aid) // 2:02X}{aid}"


def select_ef(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def verify(value: str | bytes = b"", p2: int = 0x80) -> str:
    """VERIFY; empty *value* is the case-1 status query."""
    raw = value.encode() if isinstance(value, str) else value
    return f"002000{p2:02X}" + (f"{len(raw):02X}{raw.hex()}" if raw else "")


def change(value: str, p2: int = 0x80, cla_ins: str = "0024", p1: int = 0x01) -> str:
    raw = value.encode()
    return f"{cla_ins}{p1:02X}{p2:02X}{len(raw):02X}{raw.hex()}"


def read(offset: int, le: int) -> str:
    """READ BINARY of the current EF; Le up to 256 short, beyond that extended."""
    if le <= 256:
        return f"00B0{offset:04X}{le & 0xFF:02X}"
    return f"00B0{offset:04X}00{le & 0xFFFF:04X}"


def sw_of(response: bytes) -> int:
    return response[-2] << 8 | response[-1]


def open_ef(link: Link, aid: str, fid: int) -> None:
    assert link.sw(select_app(aid)) == OK
    assert link.sw(select_ef(fid)) == OK


def read_all(link: Link) -> bytes:
    """The whole current EF in 256-byte chunks, ending at a short read or 6B00 [card]."""
    out = b""
    while True:
        r = link.send(read(len(out), 256))
        sw = sw_of(r)
        if sw == 0x6B00:
            return out
        assert sw == OK, f"{sw:04X}"
        out += r[:-2]
        if len(r) - 2 < 256:
            return out


def read_certificate(link: Link) -> bytes:
    """A certificate EF the way clients read it: 4 header bytes, then LLLL + 4 in one go."""
    head = link.send(read(0, 4))
    assert sw_of(head) == OK and head[:2] == b"\x30\x82"
    size = int.from_bytes(head[2:4], "big") + 4
    r = link.send(read(0, size))
    assert sw_of(r) == OK, f"{sw_of(r):04X}"
    return r[:-2]
