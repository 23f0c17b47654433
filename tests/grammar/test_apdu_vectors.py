"""Vector tests for command and response APDUs: every ISO 7816-3 case, both code paths.

Each vector is checked through the hand-written fast path (``CommandApdu.from_bytes`` /
``to_bytes``) and the construct reference (``parse_command`` / ``build_command``).
"""

from __future__ import annotations

import pytest

from emulator.grammar import (
    ApduFormatError,
    Case,
    CommandApdu,
    ResponseApdu,
    build_command,
    build_response,
    parse_command,
    parse_response,
)
from emulator.grammar.apdu import CASES

PARSERS = [
    pytest.param(CommandApdu.from_bytes, id="fast"),
    pytest.param(parse_command, id="construct"),
]
BUILDERS = [
    pytest.param(CommandApdu.to_bytes, id="fast"),
    pytest.param(build_command, id="construct"),
]

DATA3 = b"\x01\x02\x03"

#: (hex, expected APDU, case)
VECTORS = [
    ("00A4040C", CommandApdu(0x00, 0xA4, 0x04, 0x0C), Case.C1),
    ("00B0000010", CommandApdu(0, 0xB0, 0, 0, b"", 16), Case.C2S),
    ("00B0000000", CommandApdu(0, 0xB0, 0, 0, b"", 256), Case.C2S),
    ("00B00000FF", CommandApdu(0, 0xB0, 0, 0, b"", 255), Case.C2S),
    ("00A4020C020018", CommandApdu(0, 0xA4, 2, 0x0C, b"\x00\x18"), Case.C3S),
    ("802A00800301020300", CommandApdu(0x80, 0x2A, 0, 0x80, DATA3, 256), Case.C4S),
    ("802A00800301020320", CommandApdu(0x80, 0x2A, 0, 0x80, DATA3, 32), Case.C4S),
    ("00B08A04000104", CommandApdu(0, 0xB0, 0x8A, 4, b"", 260, True), Case.C2E),
    ("00B00000000000", CommandApdu(0, 0xB0, 0, 0, b"", 65536, True), Case.C2E),
    ("00B00000000001", CommandApdu(0, 0xB0, 0, 0, b"", 1, True), Case.C2E),
    ("00200080000003010203", CommandApdu(0, 0x20, 0, 0x80, DATA3, None, True), Case.C3E),
    (
        "802A00800000030102030100",
        CommandApdu(0x80, 0x2A, 0, 0x80, DATA3, 256, True),
        Case.C4E,
    ),
    (
        "802A00800000030102030000",
        CommandApdu(0x80, 0x2A, 0, 0x80, DATA3, 65536, True),
        Case.C4E,
    ),
]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(("hexstr", "expected", "case"), VECTORS)
def test_parse_vector(parse, hexstr: str, expected: CommandApdu, case: Case) -> None:
    apdu = parse(bytes.fromhex(hexstr))
    assert apdu == expected
    assert apdu.case is case


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(("hexstr", "expected", "case"), VECTORS)
def test_build_vector(build, hexstr: str, expected: CommandApdu, case: Case) -> None:
    assert build(expected).hex().upper() == hexstr


@pytest.mark.parametrize(("hexstr", "expected", "case"), VECTORS)
def test_each_case_has_exactly_one_grammar(hexstr: str, expected: CommandApdu, case: Case) -> None:
    raw = bytes.fromhex(hexstr)
    matching = []
    for c, grammar in CASES.items():
        try:
            grammar.parse(raw)
        except Exception:
            continue
        matching.append(c)
    assert matching == [case]


def test_long_case_3s_and_4s_with_255_bytes() -> None:
    data = bytes(range(255))
    c3 = bytes.fromhex("00D60000FF") + data
    c4 = c3 + b"\x00"
    assert CommandApdu.from_bytes(c3) == parse_command(c3) == CommandApdu(0, 0xD6, 0, 0, data)
    assert CommandApdu.from_bytes(c4).le == parse_command(c4).le == 256


def test_extended_data_longer_than_short_form() -> None:
    data = bytes(300)
    apdu = CommandApdu(0, 0xD6, 0, 0, data, 0x10000, extended=True)
    raw = apdu.to_bytes()
    assert raw[4:7] == b"\x00\x01\x2c" and raw[-2:] == b"\x00\x00"
    assert build_command(apdu) == raw
    assert parse_command(raw) == CommandApdu.from_bytes(raw) == apdu


MALFORMED = [
    "",
    "00",
    "00A404",
    "00A4040C0000",  # B1 = 00 opens an extended length, 6 bytes cannot hold it
    "00A4040C0201",  # Lc 2, one data byte
    "00A4040C0201020304",  # Lc 2, four bytes follow
    "00A4040C00000001",  # extended Lc 0 is not a case-3E APDU
    "00A4040C0000000000",  # ... nor a case-4E one
    "00A4040C00000201",  # extended Lc 2, one byte
    "00A4040C000002010203",  # extended Lc 2, one byte too many for 3E, too few for 4E
    "00A4040C00000101000000",  # one byte too many for 4E
]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("hexstr", MALFORMED)
def test_malformed_lengths_are_rejected(parse, hexstr: str) -> None:
    with pytest.raises(ApduFormatError):
        parse(bytes.fromhex(hexstr))


INVALID_OBJECTS = [
    CommandApdu(0x100, 0, 0, 0),
    CommandApdu(0, -1, 0, 0),
    CommandApdu(0, 0, 0, 0, bytes(256)),  # needs the extended form
    CommandApdu(0, 0, 0, 0, b"", 257),
    CommandApdu(0, 0, 0, 0, b"", 0),
    CommandApdu(0, 0, 0, 0, b"", 65537, True),
    CommandApdu(0, 0, 0, 0, b"", None, True),  # case 1 has no extended form
]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("apdu", INVALID_OBJECTS, ids=repr)
def test_unbuildable_objects_are_refused(build, apdu: CommandApdu) -> None:
    with pytest.raises(ApduFormatError):
        build(apdu)


def test_repr_never_shows_data() -> None:
    apdu = CommandApdu(0, 0x20, 0, 0x80, b"1234")
    assert "1234" not in repr(apdu) and "31323334" not in repr(apdu).replace(" ", "")
    assert "Lc=4" in repr(apdu)


def test_header_property() -> None:
    assert CommandApdu(0x80, 0x2A, 0x01, 0x9A).header == bytes.fromhex("802A019A")


# --- responses ------------------------------------------------------------------------------

RESPONSES = [
    ("9000", ResponseApdu(b"", 0x9000)),
    ("63C2", ResponseApdu(b"", 0x63C2)),
    ("0102039000", ResponseApdu(b"\x01\x02\x03", 0x9000)),
    ("AABB6282", ResponseApdu(b"\xaa\xbb", 0x6282)),
]


@pytest.mark.parametrize(("hexstr", "expected"), RESPONSES)
def test_response_vectors(hexstr: str, expected: ResponseApdu) -> None:
    raw = bytes.fromhex(hexstr)
    assert ResponseApdu.from_bytes(raw) == parse_response(raw) == expected
    assert expected.to_bytes() == build_response(expected) == raw
    assert expected.sw1 == raw[-2] and expected.sw2 == raw[-1]


@pytest.mark.parametrize("hexstr", ["", "90"])
def test_response_without_status_word_is_rejected(hexstr: str) -> None:
    with pytest.raises(ApduFormatError):
        ResponseApdu.from_bytes(bytes.fromhex(hexstr))
    with pytest.raises(Exception):  # noqa: B017 - construct wraps the error its own way
        parse_response(bytes.fromhex(hexstr))
