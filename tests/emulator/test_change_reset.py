"""Changing PINs (docs/card.md#change-reference-data) and the [model]
issuer-authenticated re-set (#issuer-reset)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emulator.card import Card
from emulator.commands import issuer_cryptogram
from tests.conftest import Link
from tests.emulator.apdus import COMMON, JPKI, JUKI, OK, TEXT, change, select_app, verify
from tests.support.cards import fresh_state

#: (name, AID, SFI P2, old value, new value) for the ISO-changed PINs.
ISO_PINS = [
    ("auth", JPKI, 0x98, "1234", "9876"),
    ("sign", JPKI, 0x9B, "ABC123", "NEWPASS2024"),
    ("helper", TEXT, 0x91, "2345", "0000"),
]


@pytest.mark.parametrize(
    ("name", "aid", "p2", "old", "new"), ISO_PINS, ids=[p[0] for p in ISO_PINS]
)
def test_change_reference_data_after_verify(
    link: Link, name: str, aid: str, p2: int, old: str, new: str
) -> None:
    assert link.sw(select_app(aid)) == OK
    assert link.sw(change(new, p2)) == 0x6982  # no prior VERIFY
    assert link.sw(verify(old, p2)) == OK
    assert link.sw(change(new, p2)) == OK
    assert link.sw(select_app(aid)) == OK
    assert link.sw(verify(old, p2)) & 0xFFF0 == 0x63C0
    assert link.sw(verify(new, p2)) == OK


def test_change_on_the_current_ef(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("00A4020C020018") == OK
    assert link.sw(verify("1234")) == OK
    assert link.sw(change("4321")) == OK
    assert link.sw(verify("4321")) == OK


@pytest.mark.parametrize(
    ("p2", "old", "new"),
    [
        (0x98, "1234", "12a4"),
        (0x98, "1234", "123"),
        (0x98, "1234", "12345"),
        (0x9B, "ABC123", "abc123"),
        (0x9B, "ABC123", "ABC12"),
        (0x9B, "ABC123", "A" * 17),
        (0x9B, "ABC123", "ABC-123"),
    ],
)
def test_change_refuses_a_bad_format_with_6a80(link: Link, p2: int, old: str, new: str) -> None:
    """[model] the new value must satisfy the PIN's format; the old value stays."""
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify(old, p2)) == OK
    assert link.sw(change(new, p2)) == 0x6A80
    assert link.sw(verify(old, p2)) == OK


def test_change_bad_p1(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw(change("9876", 0x98, p1=0x00)) == 0x6A86


@pytest.mark.parametrize("aid", [JUKI, COMMON])
def test_juki_pin_changes_with_jicsap_change_key(link: Link, aid: str) -> None:
    assert link.sw(select_app(aid)) == OK
    assert link.sw(change("1111", 0x9C, "8032", p1=0x00)) == 0x6982
    assert link.sw(verify("3456", 0x9C)) == OK
    assert link.sw(change("1111", 0x9C, "0024")) == 0x6986  # [model] not the ISO command
    assert link.sw(change("11a1", 0x9C, "8032", p1=0x00)) == 0x6A80
    assert link.sw(change("1111", 0x9C, "8032", p1=0x00)) == OK
    # two references: the other application's 001C keeps its value [card]
    other = COMMON if aid == JUKI else JUKI
    assert link.sw(select_app(other)) == OK
    assert link.sw(verify("1111", 0x9C)) == 0x63C2
    assert link.sw(verify("3456", 0x9C)) == OK


def test_jicsap_change_key_is_not_for_jpki(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw(change("9876", 0x98, "8032", p1=0x00)) in (0x6D00, 0x6985, 0x6986)
    assert link.sw(verify("1234", 0x98)) == OK


# --- issuer authentication and RESET RETRY COUNTER [model] ---------------------------------


def _issuer_auth(link: Link) -> None:
    r = link.send("0084000008")
    assert r[-2:] == b"\x90\x00" and len(r) == 10
    assert link.sw(f"0082000010{issuer_cryptogram(r[:8]).hex()}") == OK


def _block(link: Link, p2: int, wrong: str) -> None:
    while link.sw(verify(p2=p2)) != 0x63C0:
        link.sw(verify(wrong, p2))


def test_reset_retry_counter_needs_issuer_authentication(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("002C029804" + b"5678".hex()) == 0x6982
    assert link.sw("002C0398") == 0x6982


def test_reset_with_new_value_p1_02(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    _block(link, 0x98, "0000")
    _issuer_auth(link)
    assert link.sw("002C029804" + b"12a8".hex()) == 0x6A80  # format still applies
    assert link.sw("002C029804" + b"5678".hex()) == OK
    assert link.sw(verify(p2=0x98)) == 0x63C3
    assert link.sw(verify("1234", 0x98)) == 0x63C2
    assert link.sw(verify("5678", 0x98)) == OK


def test_unblock_keeping_the_value_p1_03(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    _block(link, 0x9B, "WRONG9")
    assert link.sw(verify("ABC123", 0x9B)) == 0x6984
    _issuer_auth(link)
    assert link.sw("002C039B0131") == 0x6700  # P1 03 carries no data
    assert link.sw("002C039B") == OK
    assert link.sw(verify(p2=0x9B)) == 0x63C5
    assert link.sw(verify("ABC123", 0x9B)) == OK


def test_wrong_cryptogram_is_refused(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    r = link.send("0084000008")
    bad = bytearray(issuer_cryptogram(r[:8]))
    bad[0] ^= 1
    assert link.sw(f"0082000010{bad.hex()}") == 0x6300
    assert link.sw("002C0398") == 0x6982


def test_challenge_is_used_once(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(f"0082000010{'00' * 16}") == 0x6985  # no challenge yet
    r = link.send("0084000008")
    cryptogram = issuer_cryptogram(r[:8]).hex()
    assert link.sw(f"0082000010{cryptogram}") == OK
    assert link.sw(f"0082000010{cryptogram}") == 0x6985  # replay


def test_challenges_differ(link: Link) -> None:
    assert len({link.send("0084000008")[:8] for _ in range(4)}) == 4


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00840000", 0x6700),
        ("00840000000101", 0x6700),
        ("0084000001AA08", 0x6700),
        ("0084010008", 0x6A86),
    ],
)
def test_get_challenge_errors(link: Link, apdu: str, sw: int) -> None:
    """No Le, extended Le past 256 [model], a data field; P1/P2 not 00."""
    assert link.sw(apdu) == sw


def test_issuer_authentication_ends_with_reselection(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    _issuer_auth(link)
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("002C0398") == 0x6982


def test_reset_counts_one_durable_write(tmp_path: Path, make_link: Callable[..., Link]) -> None:
    link = make_link(Card.create(tmp_path / "card.db", fresh_state()))
    assert link.sw(select_app(JPKI)) == OK
    _issuer_auth(link)
    before = link.card.store.writes
    assert link.sw("002C0398") == OK
    assert link.card.store.writes == before + 1
