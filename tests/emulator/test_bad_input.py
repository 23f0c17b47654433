"""Bad input: any byte string gets a status word and the card keeps serving (issue 2)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.card import Card
from tests.conftest import Link
from tests.emulator.apdus import JPKI, OK, select_app

SELECT_JPKI = bytes.fromhex(select_app(JPKI))

BAD = {
    "six-bytes-b1-00": ("00A4040C0000", 0x6700),
    "lc-too-long": ("00A4040C0AD392F0", 0x6700),
    "lc-too-short": ("00A4040C02D392F000", 0x6700),
    "extended-lc-mismatch": ("00A4040C000005D392", 0x6700),
    "unknown-ins": ("00FE0000", 0x6D00),
    "unknown-proprietary-ins": ("80FE0000", 0x6D00),
    "cla-ff": ("FFA4040C0AD392F000260100000001", 0x6E00),
    "cla-reserved": ("20A4040C0AD392F000260100000001", 0x6E00),
    "secure-messaging": ("0CA4040C0AD392F000260100000001", 0x6882),
    "chaining": ("10A4040C0AD392F000260100000001", 0x6884),
    "select-bad-p1": ("00A4080C0AD392F000260100000001", 0x6A86),
    "select-bad-p2": ("00A404040AD392F000260100000001", 0x6A86),
    "select-fid-3-bytes": ("00A4020C03000A0B", 0x6700),
    "get-data-unknown": ("00CA010100", 0x6A88),
    "verify-bad-p2": ("002000010431323334", 0x6A86),
    "external-auth-short": ("008200000400000000", 0x6700),
    "rrc-bad-p1": ("002C0098", 0x6A86),
    "sign-no-app": ("802A00970100", 0x6985),
}


@pytest.mark.parametrize(("apdu", "sw"), BAD.values(), ids=BAD.keys())
def test_bad_command_gets_its_status_word_and_the_card_serves_on(
    link: Link, apdu: str, sw: int
) -> None:
    assert link.sw(apdu) == sw
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("00200098") == 0x63C3


@pytest.mark.parametrize("raw", ["", "00", "00A4", "00A404"])
def test_shorter_than_a_header_is_6700(card: Card, raw: str) -> None:
    """In-process only: vpcd cannot carry APDUs this short."""
    card.power_on()
    assert card.transmit(bytes.fromhex(raw)) == b"\x67\x00"
    assert card.transmit(SELECT_JPKI) == b"\x90\x00"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=24) | st.binary(min_size=4, max_size=4).map(lambda h: h + b"\x00"))
def test_any_byte_string_gets_a_status_word(card: Card, raw: bytes) -> None:
    card.power_on()
    r = card.transmit(raw)
    assert len(r) >= 2 and (0x61 <= r[-2] <= 0x6F or r[-2] == 0x90)
    assert r[-2:] != b"\x6f\x00", "6F00 means a handler raised: an emulator bug"
    assert card.transmit(SELECT_JPKI) == b"\x90\x00"
