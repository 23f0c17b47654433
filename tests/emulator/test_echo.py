"""The echo cards: the plain one answers 90 00, the sized one as many bytes as Le asks for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.echo import EchoCard, expected_length
from emulator.grammar import ApduFormatError, CommandApdu


@pytest.mark.parametrize(
    ("hex_apdu", "le"),
    [
        ("00A4040C", 0),  # case 1
        ("00B0000000", 256),  # case 2 short, Le 00
        ("00B0000010", 16),  # case 2 short
        ("00A4040C02AABB", 0),  # case 3 short
        ("00A4040002AABB00", 256),  # case 4 short, Le 00
        ("00A4040002AABB20", 32),  # case 4 short
        ("00B00000000000", 65536),  # case 2 extended, Le 0000
        ("00B00000000102", 258),  # case 2 extended
        ("002A9E9A000002AABB", 0),  # case 3 extended
        ("002A9E9A000002AABB0100", 256),  # case 4 extended
        ("00", 0),  # not even a header
    ],
)
def test_expected_length(hex_apdu: str, le: int) -> None:
    assert expected_length(bytes.fromhex(hex_apdu)) == le


@given(st.binary(min_size=4, max_size=300))
def test_expected_length_agrees_with_the_grammar(apdu: bytes) -> None:
    """Wherever the card's own parser reads an Le, the sized echo card reads the same one."""
    try:
        command = CommandApdu.from_bytes(apdu)
    except ApduFormatError:  # malformed for the card: the echo card still answers
        assert expected_length(apdu) >= 0
        return
    assert expected_length(apdu) == (command.le or 0)


def test_plain_echo_answers_90_00_to_everything() -> None:
    card = EchoCard()
    assert card.transmit(bytes.fromhex("00B0000000")) == b"\x90\x00"
    assert card.apdu_count == 1


def test_sized_echo_answers_the_bytes_le_asks_for() -> None:
    card = EchoCard(sized=True)
    answer = card.transmit(bytes.fromhex("00B0000000"))
    assert answer == bytes(256) + b"\x90\x00"
    assert card.transmit(bytes.fromhex("00B0000010")) == bytes(16) + b"\x90\x00"
    assert card.transmit(bytes.fromhex("00200098")) == b"\x90\x00"
    assert card.transmit(bytes.fromhex("00B0000000")) is answer  # made once
    assert card.apdu_count == 4
