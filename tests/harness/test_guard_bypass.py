"""The guard against the bypasses of the security issue: card swap, class / INS variants of the
commands that compare or replace a secret, and the one owner VERIFY going to another PIN.

Cards are in-process but treated as physical; every test asserts on the card's counters and on
the APDUs that reached it, so a guard that lets a command through makes it fail.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from emulator.card import Card
from emulator.echo import EchoCard
from emulator.grammar.ids import JPKI, JUKI, TEXT
from emulator.identity import certificate_serial, generate_pki
from emulator.pins import DEFAULT_PINS
from emulator.state import Pki
from harness.hil.guard import (
    GuardedTransport,
    Interlocks,
    RefusedCommandError,
    RunStoppedError,
    WrongCardError,
    authorise,
)
from harness.inprocess import InProcessTransport
from harness.sessions import JpkiSession
from tests.support.cards import fresh_card, fresh_state

WRONG = b"9999"  # a wrong auth PIN: 4 digits, so the card would spend a try on it


@functools.cache
def other_pki() -> Pki:
    """A second TEST PKI: a card with another auth certificate serial (another identity)."""
    return generate_pki(with_signing=True)


def card_id(card: Card) -> str:
    return certificate_serial(card.state.pki.auth_cert)


class ReaderLike(InProcessTransport):
    """An in-process card behind a "reader": physical, records what reached the card, and
    after :meth:`swap` connects to another card on the next reset (as PC/SC does)."""

    name = "pcsc:Test Reader 00"
    physical = True

    def __init__(self, card: Any) -> None:
        super().__init__(card)
        self.sent: list[bytes] = []
        self._next: Any = None

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return super().transmit(apdu)

    def swap(self, card: Any) -> None:
        """The card is pulled and *card* inserted; nothing is sent."""
        self._next = card

    def reset(self) -> bytes:
        if self._next is not None:
            self.card, self._next = self._next, None
            self._atr = self.card.power_on()
            return self._atr
        return super().reset()


def _free_read(apdu: bytes) -> bool:
    return apdu[:2] in (b"\x00\xa4", b"\x00\xb0", b"\x00\xca")


def _with_data(apdus: list[bytes], ins: int) -> list[bytes]:
    return [a for a in apdus if a[1] == ins and len(a) > 5]


# --- 1. a card swapped behind a reset ------------------------------------------------------


@pytest.mark.parametrize("blocking", [False, True], ids=["destructive", "allow-blocking"])
def test_a_card_swapped_before_a_reset_stops_the_run(blocking: bool) -> None:
    first, second = fresh_card(), Card(fresh_state(pki=other_pki()))
    assert card_id(first) != card_id(second)
    reader = ReaderLike(first)
    permit = authorise(reader, Interlocks(card_id(first), allow_blocking=blocking))
    guard = GuardedTransport(reader, permit)
    assert JpkiSession(guard).pin_status("auth").tries_left == 3

    reader.swap(second)
    before = len(reader.sent)
    with pytest.raises(WrongCardError, match="another card") as exc:
        guard.reset()
    assert card_id(second) in str(exc.value) and card_id(first) in str(exc.value)
    assert "PIN" not in str(exc.value)
    assert reader.sent[before:] and all(_free_read(a) for a in reader.sent[before:])

    before = len(reader.sent)
    for _ in range(3):
        with pytest.raises(RunStoppedError):
            JpkiSession(guard, select=False).verify("auth", WRONG)
    with pytest.raises(RunStoppedError):
        guard.reset()
    assert reader.sent[before:] == []
    assert second.pin_record("auth").tries_left == 3
    assert first.pin_record("auth").tries_left == 3


def test_the_same_card_after_a_reset_is_identified_again_and_goes_on() -> None:
    card = fresh_card()
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks(card_id(card))))
    before = len(reader.sent)
    guard.reset()
    again = reader.sent[before:]
    assert again and all(_free_read(a) for a in again)  # the identification, nothing else
    assert guard.stopped is None
    JpkiSession(guard).verify("auth", DEFAULT_PINS["auth"])  # a named card: tries-checked
    assert _with_data(reader.sent, 0x20) and card.pin_record("auth").tries_left == 3


def test_a_card_that_cannot_be_identified_after_a_reset_stops_the_run() -> None:
    card = fresh_card()
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks(card_id(card))))
    reader.swap(EchoCard())
    with pytest.raises(WrongCardError, match="could not be identified"):
        guard.reset()
    before = len(reader.sent)
    with pytest.raises(RunStoppedError):
        guard.transmit(bytes.fromhex("0020009804") + WRONG)
    assert reader.sent[before:] == []


def test_a_reset_before_the_owner_pin_leaves_one_verify_not_two() -> None:
    card = fresh_card()
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks()))
    JpkiSession(guard).verify("auth", DEFAULT_PINS["auth"])
    guard.reset()
    with pytest.raises(RefusedCommandError, match="second VERIFY"):
        JpkiSession(guard).verify("auth", WRONG)
    assert _with_data(reader.sent, 0x20) == [
        bytes.fromhex("0020008004") + DEFAULT_PINS["auth"].encode()
    ]
    assert card.pin_record("auth").tries_left == 3


# --- 2. every form of the commands that compare or replace a secret ------------------------

#: (id, APDU) sent with JPKI selected and EF 0018 (auth PIN) current. The canonical forms
#: pass the tries check only when a wrong value leaves a try; the others are refused on a
#: named card without --allow-blocking.
_NEW = b"5678"
CANONICAL = {
    "verify-00": "0020009804" + WRONG.hex(),
    "verify-00-current-ef": "0020008004" + WRONG.hex(),
    "verify-00-extended": "002000980000" + "04" + WRONG.hex(),
    "change-p1-00-old-new": "0024009808" + WRONG.hex() + _NEW.hex(),
    "change-p1-01-new": "0024019804" + _NEW.hex(),
    "reset-retry-p1-02": "002C029804" + _NEW.hex(),
    "reset-retry-p1-03": "002C0398",
    "jicsap-change-key-80": "8032009804" + _NEW.hex(),
}
VARIANTS = {
    **{
        f"verify-cla-{cla}": cla + "20009804" + WRONG.hex()
        for cla in (
            "0C",
            "04",
            "08",
            "80",
            "84",
            "8C",
            "90",
            "10",
            "01",
            "03",
            "41",
            "60",
            "E0",
            "FF",
        )
    },
    "verify-empty-cla-0C": "0C200098",
    "verify-p1-FF": "0020FF9804" + WRONG.hex(),
    "verify-ber-21": "0021009806" + "8004" + WRONG.hex(),
    "verify-ber-21-cla-0C": "0C21009806" + "8004" + WRONG.hex(),
    "change-cla-0C": "0C24009808" + WRONG.hex() + _NEW.hex(),
    "change-cla-80": "8024019804" + _NEW.hex(),
    "change-p1-02": "0024029804" + _NEW.hex(),
    "reset-retry-p1-00-code-and-new": "002C009808" + WRONG.hex() + _NEW.hex(),
    "reset-retry-p1-01-code": "002C019804" + WRONG.hex(),
    "reset-retry-cla-10": "102C039800",
    "change-key-cla-00": "0032009804" + _NEW.hex(),
    "change-key-cla-84": "8432009804" + _NEW.hex(),
    "change-key-p1-01": "8032019804" + _NEW.hex(),
    "verify-malformed-lc": "0020009805" + WRONG.hex(),
}
ALL = {**CANONICAL, **VARIANTS}


def _named_card(tries: int, **interlocks: Any) -> tuple[Card, ReaderLike, GuardedTransport]:
    card = fresh_card()
    card.set_tries("auth", tries)
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks(card_id(card), **interlocks)))
    guard.transmit(b"\x00\xa4\x04\x0c\x0a" + JPKI.AID)
    guard.transmit(bytes.fromhex("00A4020C020018"))
    return card, reader, guard


@pytest.mark.parametrize("apdu", list(ALL.values()), ids=list(ALL))
def test_no_form_spends_the_last_try_on_the_named_card(apdu: str) -> None:
    card, reader, guard = _named_card(tries=1)
    raw = bytes.fromhex(apdu)
    before = len(reader.sent)
    with pytest.raises(RefusedCommandError) as exc:
        guard.transmit(raw)
    assert raw not in reader.sent
    assert all(a == bytes([0x00, 0x20, 0x00, raw[3]]) for a in reader.sent[before:])
    assert card.pin_record("auth").tries_left == 1
    assert WRONG.decode() not in str(exc.value) and _NEW.decode() not in str(exc.value)


@pytest.mark.parametrize("apdu", list(CANONICAL.values()), ids=list(CANONICAL))
def test_a_checkable_form_is_sent_after_the_counter_query(apdu: str) -> None:
    _, reader, guard = _named_card(tries=3)
    raw = bytes.fromhex(apdu)
    guard.transmit(raw)
    assert reader.sent[-2:] == [bytes([0x00, 0x20, 0x00, raw[3]]), raw]


@pytest.mark.parametrize("apdu", list(VARIANTS.values()), ids=list(VARIANTS))
def test_an_uncheckable_form_needs_allow_blocking(apdu: str) -> None:
    card, reader, guard = _named_card(tries=3)
    raw = bytes.fromhex(apdu)
    with pytest.raises(RefusedCommandError, match="--allow-blocking"):
        guard.transmit(raw)
    assert raw not in reader.sent and card.pin_record("auth").tries_left == 3
    _, reader, guard = _named_card(tries=3, allow_blocking=True)
    guard.transmit(raw)
    assert reader.sent[-1] == raw


@pytest.mark.parametrize("apdu", list(ALL.values()), ids=list(ALL))
def test_no_form_reaches_a_card_nobody_opted_in_but_the_owner_verify(apdu: str) -> None:
    card = fresh_card()
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks()))
    guard.transmit(b"\x00\xa4\x04\x0c\x0a" + JPKI.AID)
    guard.transmit(bytes.fromhex("00A4020C020018"))
    raw = bytes.fromhex(apdu)
    if apdu in (
        CANONICAL["verify-00"],
        CANONICAL["verify-00-current-ef"],
        CANONICAL["verify-00-extended"],
    ):
        guard.transmit(raw)  # the owner's one VERIFY (a wrong value here: 3 -> 2 tries)
        assert card.pin_record("auth").tries_left == 2
        raw = bytes.fromhex(CANONICAL["verify-00"])
    with pytest.raises(RefusedCommandError):
        guard.transmit(raw)
    assert reader.sent.count(raw) <= 1 and card.pin_record("auth").tries_left >= 2
    assert len(_with_data(reader.sent, 0x20)) <= 1


# --- docs/safety.md rule 2: the one owner VERIFY goes to the JPKI auth PIN only-------------------


def _select(guard: GuardedTransport, aid: bytes, fid: int | None = None) -> None:
    guard.transmit(bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid)
    if fid is not None:
        guard.transmit(bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + fid.to_bytes(2, "big"))


#: (id, steps before the VERIFY, its P2, the PIN it would spend a try of)
ELSEWHERE: dict[str, tuple[list[str], int, str]] = {
    "sign-by-sfi": ([JPKI.AID.hex()], 0x9B, "sign"),
    "sign-current-ef": ([JPKI.AID.hex(), "001B"], 0x80, "sign"),
    "juki-by-sfi": ([JUKI.AID.hex()], 0x9C, "juki"),
    "juki-current-ef": ([JUKI.AID.hex(), "001C"], 0x80, "juki"),
    "juki-common-ap": ([JUKI.COMMON_AID.hex(), "001C"], 0x80, "juki"),
    "helper-by-sfi": ([TEXT.AID.hex()], 0x91, "helper"),
    "helper-current-ef": ([TEXT.AID.hex(), "0011"], 0x80, "helper"),
    "98-outside-jpki": ([TEXT.AID.hex()], 0x98, "helper"),
    "0018-then-another-ap": ([JPKI.AID.hex(), "0018", JUKI.AID.hex(), "001C"], 0x80, "juki"),
    "0018-then-sfi-read": ([JPKI.AID.hex(), "0018", "B09B"], 0x80, "sign"),
    "0018-then-failed-select": ([JPKI.AID.hex(), "0018", "EEEE"], 0x80, "auth"),
    "nothing-selected": ([], 0x80, "auth"),
}


def _step(guard: GuardedTransport, step: str) -> None:
    if step.startswith("B0"):  # READ BINARY by SFI (makes another EF current)
        guard.transmit(bytes([0x00, 0xB0, int(step[2:], 16), 0x00, 0x00]))
    elif len(step) == 4:
        guard.transmit(bytes.fromhex("00A4020C02" + step))
    else:
        _select(guard, bytes.fromhex(step))


@pytest.mark.parametrize("steps,p2,pin", list(ELSEWHERE.values()), ids=list(ELSEWHERE))
def test_the_owner_verify_goes_to_no_other_pin(steps: list[str], p2: int, pin: str) -> None:
    card = fresh_card()
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks()))
    for step in steps:
        _step(guard, step)
    raw = bytes([0x00, 0x20, 0x00, p2, 0x04]) + WRONG
    with pytest.raises(RefusedCommandError, match="only to the JPKI authentication PIN"):
        guard.transmit(raw)
    assert _with_data(reader.sent, 0x20) == []
    assert {n: card.pin_record(n).tries_left for n in ("auth", "sign", "juki", "helper")} == {
        "auth": 3,
        "sign": 5,
        "juki": 3,
        "helper": 3,
    }
    assert card.pin_record(pin).tries_left == card.pin_record(pin).max_tries


@pytest.mark.parametrize(
    "steps,p2",
    [
        ([JPKI.AID.hex()], 0x98),
        ([JPKI.AID.hex(), "0018"], 0x80),
        ([JPKI.AID.hex(), "000A", "0018"], 0x80),
    ],
    ids=["by-sfi", "current-ef", "reselected"],
)
def test_the_owner_verify_reaches_the_auth_pin_once(steps: list[str], p2: int) -> None:
    card = fresh_card()
    reader = ReaderLike(card)
    guard = GuardedTransport(reader, authorise(reader, Interlocks()))
    for step in steps:
        _step(guard, step)
    guard.transmit(bytes([0x00, 0x20, 0x00, p2, 0x04]) + DEFAULT_PINS["auth"].encode())
    with pytest.raises(RefusedCommandError, match="second VERIFY"):
        guard.transmit(bytes([0x00, 0x20, 0x00, p2, 0x04]) + WRONG)
    assert len(_with_data(reader.sent, 0x20)) == 1
    assert card.pin_record("auth").tries_left == 3
