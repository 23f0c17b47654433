"""Answer to reset, GET DATA 5F51, selection and the security state (docs/card.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulator.card import Card
from harness.inprocess import InProcessTransport
from tests.conftest import Link
from tests.emulator.apdus import (
    COMMON,
    JPKI,
    JUKI,
    OK,
    SURFACE,
    TEXT,
    open_ef,
    read,
    select_app,
    select_ef,
    verify,
)

#: ATR forms, byte for byte from docs/card.md#answer-to-reset.
ATRS = {
    "contact": "3BDA13FF8131FB468012392F31C173C601C03B",
    "contact-short": "3BC5FF8131FB458073C6010000",
    "contactless": "3B888001000005E0B381A1007F",
    "contactless-alt": "3B888001004B51FF0081D100BC",
    "legacy-juki": "3BE000FF8131FE4514",
}


@pytest.mark.parametrize("profile", ["standard", "face-auth"])
@pytest.mark.parametrize("form", ATRS)
def test_atr_per_profile_and_form(make_link: Callable[..., Link], profile: str, form: str) -> None:
    link = make_link(profile=profile, atr_form=form)
    assert link.transport.atr.hex().upper() == ATRS[form]
    assert link.transport.reset().hex().upper() == ATRS[form]


def test_default_atr_is_the_contact_form(link: Link) -> None:
    assert link.transport.atr.hex().upper() == ATRS["contact"]


@pytest.mark.parametrize(
    ("form", "contact"),
    [("contact", "contact"), ("contact-short", "contact-short"), ("contactless", "contact")],
)
def test_get_data_5f51_is_the_contact_atr_without_3b(
    make_link: Callable[..., Link], form: str, contact: str
) -> None:
    link = make_link(atr_form=form)
    r = link.send("00CA5F5100")
    assert r[-2:] == b"\x90\x00"
    assert r[:-2].hex().upper() == ATRS[contact][2:]


@pytest.mark.parametrize("aid", [JPKI, TEXT, SURFACE, JUKI, COMMON])
def test_applications_select_by_aid(link: Link, aid: str) -> None:
    assert link.sw(select_app(aid)) == OK
    assert link.sw(f"00A40400{len(aid) // 2:02X}{aid}") == OK  # P2 00 (FCI not returned)


@pytest.mark.parametrize(
    ("aid", "fids"),
    [
        (
            JPKI,
            [
                0x0001,
                0x0002,
                0x0006,
                0x0008,
                0x000A,
                0x000B,
                0x0017,
                0x0018,
                0x001A,
                0x001B,
                0x0005,
                0x0009,
                0x0010,
                0x0016,
                0x0019,
                0x001C,
                0x001E,
            ],
        ),
        (TEXT, [0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0008, 0x0011, 0x0012, 0x0014, 0x0015]),
        (SURFACE, [0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0012, 0x0013]),
        (JUKI, [0x001C]),
        (COMMON, [0x001C]),
    ],
)
def test_files_select_by_fid(link: Link, aid: str, fids: list[int]) -> None:
    assert link.sw(select_app(aid)) == OK
    for fid in fids:
        assert link.sw(select_ef(fid)) == OK, f"{fid:04X}"
        assert link.sw(f"00A40200 02{fid:04X}") == OK


@pytest.mark.parametrize(
    "apdu",
    [
        select_app("D392F000260100000002"),  # unknown AID
        select_app("A000000003"),
        select_ef(0x3F00),  # MF is not selectable [card]
        select_ef(0x0099),  # unknown FID
        select_ef(0x0011),  # the text-AP PIN EF is not in the JPKI AP (001C is, [card])
    ],
)
def test_unknown_selection_is_6a82(link: Link, apdu: str) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(apdu) == 0x6A82


def test_nothing_selected_after_power_on(link: Link) -> None:
    link.transport.reset()
    assert link.sw(select_ef(0x0018)) == 0x6A82  # no application to look the FID up in
    assert link.sw(verify(p2=0x98)) == 0x6A82
    assert link.sw(read(0, 4)) != OK
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify(p2=0x98)) == 0x63C3


@pytest.mark.parametrize("cla", [0x01, 0x02, 0x03, 0x81, 0x83, 0x40, 0x41, 0x4F])
def test_other_logical_channels_are_6881(link: Link, cla: int) -> None:
    """Only channel 0: channels 1-3 (CLA b2b1) and 4-19 (CLA 01xx xxxx) answer 6881 [card]."""
    assert link.sw(f"{cla:02X}A4040C0A{JPKI}") == 0x6881
    assert link.sw(f"{cla:02X}200098") == 0x6881


def _verified_auth(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.send("802A0097040102030400")[-2:] == b"\x90\x00"


def test_reselecting_the_application_clears_the_security_state(link: Link) -> None:
    _verified_auth(link)
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("802A0097040102030400") == 0x6982


def test_selecting_another_application_clears_the_security_state(link: Link) -> None:
    _verified_auth(link)
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("802A0097040102030400") == 0x6982


def test_selecting_an_ef_keeps_the_security_state(link: Link) -> None:
    _verified_auth(link)
    assert link.sw(select_ef(0x000A)) == OK
    assert link.sw("802A0097040102030400") == OK


def test_reset_clears_the_security_state(link: Link) -> None:
    _verified_auth(link)
    link.transport.reset()
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("802A0097040102030400") == 0x6982


def test_power_off_clears_the_security_state(card: Card) -> None:
    with InProcessTransport(card) as t:
        t.transmit(bytes.fromhex(select_app(TEXT)))
        assert t.transmit(bytes.fromhex(verify("2345", 0x91))) == b"\x90\x00"
        card.power_off()
        card.power_on()
        t.transmit(bytes.fromhex(select_app(TEXT)))
        t.transmit(bytes.fromhex(select_ef(0x0001)))
        assert t.transmit(bytes.fromhex(read(0, 17))) == b"\x69\x82"


def test_failed_verify_drops_the_verified_state(link: Link) -> None:
    open_ef(link, TEXT, 0x0011)
    assert link.sw(verify("2345")) == OK
    assert link.sw(verify("0000")) == 0x63C2
    assert link.sw(select_ef(0x0001)) == OK
    assert link.sw(read(0, 17)) == 0x6982
