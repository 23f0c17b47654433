"""BER-TLV objects (1- and 2-byte tags, short / 81 / 82 lengths) and the JPKI token info."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.grammar import ApduFormatError, Tlv, TokenInfo, build_tlvs, parse_tlvs
from emulator.grammar.tlv import TLV, TLV_SEQUENCE, TOKEN_INFO, TOKEN_INFO_SIZE

VECTORS = [
    ("5A0101", Tlv(0x5A, b"\x01")),
    ("8000", Tlv(0x80, b"")),
    ("5F5102AABB", Tlv(0x5F51, b"\xaa\xbb")),
    ("DF240131", Tlv(0xDF24, b"1")),
    ("FF107F" + "00" * 0x7F, Tlv(0xFF10, bytes(0x7F))),
    ("FF108180" + "00" * 0x80, Tlv(0xFF10, bytes(0x80))),
    ("FF1081FF" + "00" * 0xFF, Tlv(0xFF10, bytes(0xFF))),
    ("DF23820100" + "00" * 0x100, Tlv(0xDF23, bytes(0x100))),
]


@pytest.mark.parametrize(("hexstr", "tlv"), VECTORS, ids=[v[0][:12] for v in VECTORS])
def test_tlv_vectors(hexstr: str, tlv: Tlv) -> None:
    raw = bytes.fromhex(hexstr)
    assert tlv.to_bytes() == raw
    assert parse_tlvs(raw) == [tlv]


def test_sequence_of_objects() -> None:
    objects = [Tlv(0xDF22, "山田".encode()), Tlv(0x5A, b""), Tlv(0xDF25, b"1")]
    raw = build_tlvs(objects)
    assert raw.hex().upper() == "DF2206" + "山田".encode().hex().upper() + "5A00DF250131"
    assert parse_tlvs(raw) == objects
    assert parse_tlvs(b"") == []


@pytest.mark.parametrize(
    "hexstr",
    [
        "5A0201",  # value shorter than its length
        "5A010102",  # trailing byte after the last object
        "5A80",  # indefinite length
        "5A8300000100",  # 3-byte length form: not used by the card
        "5F",  # two-byte tag cut short
        "DF2182",  # long length cut short
    ],
)
def test_malformed_tlv_is_rejected(hexstr: str) -> None:
    with pytest.raises(ApduFormatError):
        parse_tlvs(bytes.fromhex(hexstr))


def test_oversized_length_is_refused_when_building() -> None:
    with pytest.raises(ApduFormatError):
        Tlv(0x5A, bytes(0x10000)).to_bytes()


one_byte_tags = st.integers(0, 0xFF).filter(lambda t: t & 0x1F != 0x1F)
two_byte_tags = st.builds(
    lambda first, second: first << 8 | second,
    st.integers(0, 0xFF).filter(lambda t: t & 0x1F == 0x1F),
    st.integers(0, 0x7F),
)
tlvs = st.builds(Tlv, one_byte_tags | two_byte_tags, st.binary(max_size=300))


@given(st.lists(tlvs, max_size=5))
def test_build_then_parse_is_identity(objects: list[Tlv]) -> None:
    assert parse_tlvs(build_tlvs(objects)) == objects


COMPILED_SEQUENCE = TLV_SEQUENCE.compile()


def _outcome(grammar: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return ("ok", [(o.tag.tag, o.value) for o in grammar.parse(raw).objects])
    except Exception:  # construct's error types differ between the two paths
        return ("rejected", None)


@given(st.binary(max_size=40) | st.lists(tlvs, max_size=3).map(build_tlvs))
def test_compiled_tlv_grammar_agrees_with_interpreted(raw: bytes) -> None:
    assert _outcome(COMPILED_SEQUENCE, raw) == _outcome(TLV_SEQUENCE, raw)


def test_compiled_single_tlv_parses_a_vector() -> None:
    raw = bytes.fromhex("DF240131")
    assert TLV.compile().parse(raw) == TLV.parse(raw)


# --- token info (EF 0006) --------------------------------------------------------------------


def test_token_info_layout() -> None:
    info = TokenInfo(
        "JPKIAPICCTOKEN2",
        "myna-hil TEST",
        "virtual card",
        "0001",
        0x040D,
        16,
        6,
        b"\x01\x02",
        b"\x03\x04",
    )
    raw = info.to_bytes()
    # PKCS#11 CK_TOKEN_INFO with 4-byte ulongs: the 160 bytes of a real card's EF 0006 [card]
    assert len(raw) == TOKEN_INFO_SIZE == 32 + 32 + 16 + 16 + 4 * 11 + 2 + 2 + 16 == 160
    assert raw[:32] == b"JPKIAPICCTOKEN2".ljust(32, b" ")
    assert raw[96:100] == b"\x00\x00\x04\x0d"
    assert raw[116:124] == b"\x00\x00\x00\x10\x00\x00\x00\x06"  # PIN lengths 16 / 6
    assert raw[140:144] == b"\x01\x02\x03\x04"
    assert TokenInfo.from_bytes(raw) == info
    assert TOKEN_INFO.compile().parse(raw) == TOKEN_INFO.parse(raw)


def test_token_info_label_too_long() -> None:
    with pytest.raises(ApduFormatError):
        TokenInfo("X" * 33).to_bytes()


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=32),
    st.integers(0, 0xFFFFFFFF),
)
def test_token_info_round_trip(label: str, flags: int) -> None:
    info = TokenInfo(label, flags=flags)
    assert TokenInfo.from_bytes(info.to_bytes()) == info
