"""The card remembers the short commands it parsed (``emulator.card._parse``): the same
bytes give the same command, the answers do not change, and no PIN is kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import card as card_module
from emulator.grammar import ApduFormatError, CommandApdu
from emulator.pins import DEFAULT_PINS
from emulator.redact import SECRET_INS
from tests.support.cards import fresh_card

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_PIN = bytes.fromhex("00A4020C020018")
STATUS = bytes.fromhex("0020008000")


@pytest.fixture(autouse=True)
def empty_memo() -> None:
    card_module._PARSED.clear()


def test_the_same_bytes_are_the_same_command() -> None:
    first = card_module._parse(bytes(STATUS))
    again = card_module._parse(bytes.fromhex(STATUS.hex()))  # equal bytes, another object
    assert again is first and again == CommandApdu.from_bytes(STATUS)


def test_a_pin_is_never_kept() -> None:
    card = fresh_card()
    card.power_on()
    pin = DEFAULT_PINS["auth"].encode()
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN, STATUS, bytes.fromhex("0020008004") + pin):
        card.transmit(apdu)
    assert card.transmit(STATUS) == b"\x63\xc3"  # the right PIN restored the counter
    kept = list(card_module._PARSED)
    assert STATUS in kept and SELECT_JPKI in kept
    assert not [raw for raw in kept if pin in raw]
    assert not [raw for raw in kept if len(raw) > 5 and raw[1] in SECRET_INS]


def test_memory_is_bounded_and_bad_bytes_are_not_kept() -> None:
    for n in range(card_module._PARSED_MAX * 2):
        card_module._parse(bytes.fromhex("00B0") + n.to_bytes(2, "big") + b"\x00")
    assert len(card_module._PARSED) <= card_module._PARSED_MAX
    with pytest.raises(ApduFormatError):
        card_module._parse(b"\x00\xa4")
    assert b"\x00\xa4" not in card_module._PARSED
    assert card_module._parse(bytearray(STATUS)) == CommandApdu.from_bytes(STATUS)


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_remembered_or_not_the_parse_is_the_same(raw: bytes) -> None:
    try:
        expected = CommandApdu.from_bytes(raw)
    except ApduFormatError:
        with pytest.raises(ApduFormatError):
            card_module._parse(raw)
        return
    assert card_module._parse(raw) == expected
    assert card_module._parse(bytes(raw)) == expected  # now from the memo, if kept
