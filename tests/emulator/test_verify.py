"""VERIFY and the retry counters (docs/card.md#verify): forms, counts, quirks, durability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emulator.card import Card
from emulator.state import Quirks
from emulator.store import SqliteStore
from harness.inprocess import InProcessTransport
from harness.transport import CardRemovedError
from tests.conftest import Link
from tests.emulator.apdus import JPKI, JUKI, OK, TEXT, open_ef, select_app, verify
from tests.support.cards import fresh_state

#: (name, AID, FID, correct value, wrong value, max tries) per docs/card.md#secrets.
PINS = [
    ("auth", JPKI, 0x0018, "1234", "4321", 3),
    ("sign", JPKI, 0x001B, "ABC123", "ABC124", 5),
    ("juki", JUKI, 0x001C, "3456", "6543", 3),
    ("helper", TEXT, 0x0011, "2345", "5432", 3),
]
IDS = [p[0] for p in PINS]


def _tries(link: Link, name: str) -> int:
    return link.card.state.pins[name].tries_left


@pytest.mark.parametrize(("name", "aid", "fid", "good", "bad", "max_tries"), PINS, ids=IDS)
@pytest.mark.parametrize("form", ["current-ef", "sfi"])
def test_verify_both_p2_forms(
    link: Link, name: str, aid: str, fid: int, good: str, bad: str, max_tries: int, form: str
) -> None:
    if form == "current-ef":
        open_ef(link, aid, fid)
        p2 = 0x80
    else:
        assert link.sw(select_app(aid)) == OK
        p2 = 0x80 | fid
    assert link.sw(verify(p2=p2)) == 0x63C0 | max_tries
    assert link.sw(verify(bad, p2)) == 0x63C0 | (max_tries - 1)
    assert _tries(link, name) == max_tries - 1
    assert link.sw(verify(good, p2)) == OK
    assert _tries(link, name) == max_tries  # restored on success
    assert link.sw(verify(p2=p2)) == 0x63C0 | max_tries


@pytest.mark.parametrize("empty", ["00200098", "0020009800"], ids=["case1", "lc00"])
def test_empty_verify_is_a_status_query_that_spends_nothing(link: Link, empty: str) -> None:
    assert link.sw(select_app(JPKI)) == OK
    for _ in range(5):
        assert link.sw(empty) == 0x63C3
    assert _tries(link, "auth") == 3


@pytest.mark.parametrize(("name", "aid", "fid", "good", "bad", "max_tries"), PINS, ids=IDS)
def test_counting_down_to_blocked(
    link: Link, name: str, aid: str, fid: int, good: str, bad: str, max_tries: int
) -> None:
    open_ef(link, aid, fid)
    for left in range(max_tries - 1, -1, -1):
        assert link.sw(verify(bad)) == 0x63C0 | left
    assert link.card.state.pins[name].blocked
    assert link.sw(verify(good)) == 0x6984  # even the right value: blocked
    assert link.sw(verify(bad)) == 0x6984
    assert link.sw(verify()) == 0x63C0
    assert _tries(link, name) == 0


def test_blocked_pin_survives_reset(link: Link) -> None:
    link.card.block("auth")
    link.transport.reset()
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == 0x6984


def test_success_restores_a_partly_spent_counter(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    for left in (4, 3, 2, 1):
        assert link.sw(verify("WRONG1", 0x9B)) == 0x63C0 | left
    assert link.sw(verify("ABC123", 0x9B)) == OK
    assert link.sw(verify(p2=0x9B)) == 0x63C5


def test_signing_password_is_case_sensitive(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("abc123", 0x9B)) == 0x63C4  # a lowercase password is simply wrong
    assert link.sw(verify("ABC123\n", 0x9B)) == 0x63C3  # so is a trailing newline
    assert link.sw(verify("ABC123", 0x9B)) == OK


@pytest.mark.parametrize(
    ("p2", "value", "name"),
    [
        (0x98, "12345", "auth"),
        (0x98, "123", "auth"),
        (0x9B, "ABC12", "sign"),
        (0x9B, "A" * 17, "sign"),
        (0x9C, "34567", "juki"),
    ],
)
def test_wrong_length_is_6700_and_spends_no_try(link: Link, p2: int, value: str, name: str) -> None:
    """[model] a length outside the PIN's range answers 6700 without a decrement."""
    assert link.sw(select_app(JUKI if name == "juki" else JPKI)) == OK
    before = _tries(link, name)
    assert link.sw(verify(value, p2)) == 0x6700
    assert _tries(link, name) == before


def test_fullwidth_digits_spend_a_try(link: Link) -> None:
    """§9: an input method's full-width digits are 12 bytes of UTF-8 -> 6700 for auth [model];
    for the 6-16 character signing password they are in range and spend a real try."""
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("１２３４".encode(), 0x98)) == 0x6700
    assert link.sw(verify("ＡＢＣ１２３".encode()[:16], 0x9B)) == 0x63C4


@pytest.mark.parametrize("quirk", [False, True])
def test_9000_after_success_quirk(make_link: Callable[..., Link], quirk: bool) -> None:
    link = make_link(quirks=Quirks(status_9000_after_verify=quirk))
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify(p2=0x98)) == 0x63C3  # before any success: always 63Cx
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw(verify(p2=0x98)) == (OK if quirk else 0x63C3)
    assert link.sw(verify(p2=0x9B)) == 0x63C5  # only the PIN verified in this session
    assert link.sw(select_app(JPKI)) == OK  # re-selection ends the session's success
    assert link.sw(verify(p2=0x98)) == 0x63C3


def test_verify_without_current_ef_or_with_non_pin_ef(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234")) == 0x6986  # P2 80 and no EF selected
    open_ef(link, JPKI, 0x000A)
    assert link.sw(verify("1234")) == 0x6986  # a certificate is no reference data
    assert _tries(link, "auth") == 3


@pytest.mark.parametrize("apdu", ["002001980431323334", "002000400431323334"])
def test_verify_bad_p1_p2(link: Link, apdu: str) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(apdu) == 0x6A86


@pytest.mark.parametrize("p2", [0x80, 0x92])
def test_text_ap_0012_is_always_blocked(link: Link, p2: int) -> None:
    if p2 == 0x80:
        open_ef(link, TEXT, 0x0012)
    else:
        assert link.sw(select_app(TEXT)) == OK
    assert link.sw(verify(p2=p2)) == 0x63C0
    assert link.sw(verify("2345", p2)) == 0x6984
    assert link.sw(verify(p2=p2)) == 0x63C0
    assert _tries(link, "helper") == 3  # its blocked neighbour costs the real PIN nothing


def test_same_value_against_several_pins_spends_tries_on_each(link: Link) -> None:
    """§9: one 4-digit value tried everywhere costs a try on every PIN that differs."""
    for aid, p2 in ((JPKI, 0x98), (JUKI, 0x9C), (TEXT, 0x91)):
        assert link.sw(select_app(aid)) == OK
        link.sw(verify("1234", p2))
    assert [_tries(link, n) for n in ("auth", "juki", "helper")] == [3, 2, 2]


# --- durability ---------------------------------------------------------------------------


@pytest.fixture
def durable(tmp_path: Path, make_link: Callable[..., Link]) -> Link:
    return make_link(Card.create(tmp_path / "card.db", fresh_state()))


def _writes(link: Link) -> int:
    return link.card.store.writes


def test_decrement_before_compare_is_visible_in_durable_writes(durable: Link) -> None:
    start = _writes(durable)
    assert durable.sw(select_app(JPKI)) == OK
    assert durable.sw(verify(p2=0x98)) == 0x63C3
    assert durable.sw("00B08A0004") == OK
    assert _writes(durable) == start, "selects, status queries and reads write nothing"
    assert durable.sw(verify("0000", 0x98)) == 0x63C2
    assert _writes(durable) == start + 1, "a wrong VERIFY: the decrement"
    assert durable.sw(verify("1234", 0x98)) == OK
    assert _writes(durable) == start + 3, "a correct VERIFY: decrement, then restore"
    assert durable.sw("0024019804" + b"9876".hex()) == OK
    assert _writes(durable) == start + 4, "a change: one write"
    assert durable.sw(verify("12345", 0x98)) == 0x6700
    assert _writes(durable) == start + 4, "an impossible length writes nothing"


def test_wrong_verify_is_durable_before_the_answer(durable: Link) -> None:
    assert durable.sw(select_app(JPKI)) == OK
    assert durable.sw(verify("0000", 0x98)) == 0x63C2
    store = durable.card.store
    assert isinstance(store, SqliteStore)
    assert store.load().pins["auth"].tries_left == 2


def test_tearing_after_the_decrement_costs_a_correct_pin_a_try(tmp_path: Path) -> None:
    path = tmp_path / "card.db"
    card = Card.create(path, fresh_state())
    with InProcessTransport(card) as t:
        t.transmit(bytes.fromhex(select_app(JPKI)))
        card.faults.tear_after_decrement = 1
        with pytest.raises(CardRemovedError):
            t.transmit(bytes.fromhex(verify("1234", 0x98)))
        assert Card.open(path).state.pins["auth"].tries_left == 2  # on disk: spent
        t.reset()
        t.transmit(bytes.fromhex(select_app(JPKI)))
        assert t.transmit(bytes.fromhex(verify(p2=0x98))) == b"\x63\xc2"
        card.faults.tear_after_decrement = 2
        for _ in range(2):
            with pytest.raises(CardRemovedError):
                t.transmit(bytes.fromhex(verify("1234", 0x98)))
            t.reset()
            t.transmit(bytes.fromhex(select_app(JPKI)))
        # The owner never mistyped, and the card is locked.
        assert t.transmit(bytes.fromhex(verify("1234", 0x98))) == b"\x69\x84"
    assert Card.open(path).state.pins["auth"].blocked
