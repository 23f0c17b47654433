"""The tap's card side in-process: the relay (floor, forwarding, trace) in front of an emulator
card, no PC/SC. The same behaviours through pcscd + vpcd: tests/vpcd/test_tap.py."""

from __future__ import annotations

import copy

import pytest

from emulator.card import Card
from emulator.errors import CardPoweredOff
from harness.hil.floor import REFUSAL_SW, Refusal, TriesFloor
from harness.hil.tap import TapEvent, TapRelay, TraceFile
from harness.inprocess import InProcessTransport
from harness.trace.explain import Cause, explain, format_explanation
from harness.trace.recorder import TraceLog, read_trace
from harness.trace.records import Cmd, Note, Rsp
from harness.transport import CardRemovedError
from tests.emulator.apdus import JPKI, change, select_app, select_ef, verify
from tests.support.cards import fresh_state
from tests.support.tap import DIGEST_INFO, SESSION

REFUSED = REFUSAL_SW.to_bytes(2, "big")


def _cards() -> tuple[Card, Card]:
    """Two cards with one state: same keys, same PINs, same holder."""
    state = fresh_state()
    return Card(copy.deepcopy(state)), Card(copy.deepcopy(state))


def _relay(card: Card, floor: int = 2) -> tuple[TapRelay, list[TapEvent]]:
    events: list[TapEvent] = []
    log = TraceLog("tap:test", card.atr)
    relay = TapRelay(InProcessTransport(card), log, floor=TriesFloor(floor), listener=events.append)
    relay.attach()
    return relay, events


def _tries(card: Card) -> dict[str, int]:
    return {name: card.pin_record(name).tries_left for name in ("auth", "sign", "juki", "helper")}


def _send(relay: TapRelay, hexstr: str) -> bytes:
    return relay.transmit(bytes.fromhex(hexstr))


def test_answers_through_the_relay_are_those_of_the_card() -> None:
    direct, tapped = _cards()
    relay, _ = _relay(tapped)
    plain = InProcessTransport(direct)
    for apdu in SESSION:
        assert _send(relay, apdu) == plain.transmit(bytes.fromhex(apdu)), apdu
    assert _tries(tapped) == _tries(direct) == {"auth": 3, "sign": 5, "juki": 3, "helper": 3}
    assert relay.stats.refused == 0 and relay.stats.forwarded == len(SESSION)


def test_a_wrong_pin_in_a_loop_is_stopped_at_the_floor() -> None:
    card, _ = _cards()
    relay, events = _relay(card)
    assert _send(relay, select_app(JPKI)) == b"\x90\x00"
    answers = [_send(relay, verify("9999", p2=0x98)) for _ in range(6)]
    # 3 tries: one wrong value leaves 2 (= the floor); the next could leave 1: refused.
    assert answers == [b"\x63\xc2", *[REFUSED] * 5]
    assert card.pin_record("auth").tries_left == 2
    refused = [e for e in events if e.kind == "refused"]
    assert len(refused) == 5
    assert refused[0].refusal == Refusal(
        "2 tries left: a wrong value would leave 1, fewer than the floor 2", 2
    )
    # The refusal names the app's previous commands (names and answers, never values).
    names = [(c.name, a.sw) for c, a in refused[0].history if isinstance(a, Rsp)]
    assert names == [("SELECT jpki", 0x9000), ("VERIFY", 0x63C2)]


def test_the_signing_password_keeps_the_floor_too() -> None:
    card, _ = _cards()
    relay, _ = _relay(card)
    _send(relay, select_app(JPKI))
    answers = [_send(relay, verify("WRONG1", p2=0x9B)) for _ in range(6)]
    assert answers == [b"\x63\xc4", b"\x63\xc3", b"\x63\xc2", *[REFUSED] * 3]
    assert card.pin_record("sign").tries_left == 2


def test_explain_names_the_retry_loop() -> None:
    card, _ = _cards()
    relay, _ = _relay(card)
    _send(relay, select_app(JPKI))
    for _ in range(4):
        _send(relay, verify("9999", p2=0x98))
    expl = explain(relay.log.records)
    assert [(f.cause, f.decrement) for f in expl.findings] == [
        (Cause.USER_WRONG, True),
        (Cause.AUTO_RETRY, False),
        (Cause.AUTO_RETRY, False),
        (Cause.AUTO_RETRY, False),
    ]
    first = expl.findings[0].index
    assert all(f"re-sent after #{first} failed" in f.detail for f in expl.findings[1:])
    assert expl.decrements == {"auth": 1} and expl.refused == 3
    text = format_explanation(expl)
    assert "automatic retry by the app" in text and "3 command(s) refused by the tap" in text


def test_a_different_value_after_a_refusal_is_no_retry() -> None:
    card, _ = _cards()
    relay, _ = _relay(card)
    _send(relay, select_app(JPKI))
    _send(relay, verify("9999", p2=0x98))
    assert _send(relay, verify("1234", p2=0x98)) == REFUSED  # right value, but at the floor
    assert explain(relay.log.records).causes() == [Cause.USER_WRONG]


def test_floor_zero_forwards_everything_and_sends_nothing_of_its_own() -> None:
    card, _ = _cards()
    relay, _ = _relay(card, floor=0)
    _send(relay, select_app(JPKI))
    answers = [_send(relay, verify("9999", p2=0x98)) for _ in range(4)]
    assert answers == [b"\x63\xc2", b"\x63\xc1", b"\x63\xc0", b"\x69\x84"]
    assert card.pin_record("auth").tries_left == 0
    assert relay.stats.queries == 0
    assert [c.hex[:8] for c in relay.log.records if isinstance(c, Cmd)] == [
        "00A4040C",
        *["00200098"] * 4,
    ]


def test_counter_query_is_sent_once_then_the_cards_answers_are_used() -> None:
    card, _ = _cards()
    relay, events = _relay(card, floor=1)
    _send(relay, select_app(JPKI))
    _send(relay, verify("9999", p2=0x98))  # unknown: one query (63C3), then forwarded
    _send(relay, verify("9999", p2=0x98))  # known from the 63C2 just seen: no query
    assert _send(relay, verify("9999", p2=0x98)) == REFUSED  # 1 left: would leave 0
    assert relay.stats.queries == 1
    queries = [e.cmd.hex for e in events if e.kind == "query" and e.cmd is not None]
    assert queries == ["00200098"]
    notes = [r.event for r in relay.log.records if isinstance(r, Note)]
    assert notes == ["counter-query", "refused"]


def test_the_current_ef_form_is_checked_under_the_same_selection() -> None:
    card, _ = _cards()
    relay, _ = _relay(card)
    _send(relay, select_app(JPKI))
    _send(relay, select_ef(0x0018))
    assert _send(relay, verify("9999")) == b"\x63\xc2"
    assert _send(relay, verify("9999")) == REFUSED
    _send(relay, select_ef(0x001B))  # another EF current: the signing password's counter
    assert _send(relay, verify("WRONG1")) == b"\x63\xc4"


def test_a_correct_value_keeps_what_is_known_so_the_status_quirk_does_not_block() -> None:
    card, _ = _cards()
    card.set_quirks(status_9000_after_verify=True)
    relay, _ = _relay(card)
    _send(relay, select_app(JPKI))
    assert _send(relay, verify("1234", p2=0x98)) == b"\x90\x00"
    assert _send(relay, verify(p2=0x98)) == b"\x90\x00"  # the quirk: not a count
    assert _send(relay, verify("1234", p2=0x98)) == b"\x90\x00"  # still forwarded


def test_a_selection_the_floor_cannot_follow_makes_it_ask_again() -> None:
    card, _ = _cards()
    relay, _ = _relay(card, floor=1)
    _send(relay, select_app(JPKI))
    _send(relay, verify("9999", p2=0x98))  # query + forward: 2 left
    _send(relay, "80A4040C0AD392F000260100000001")  # a proprietary SELECT: selection unknown
    _send(relay, verify("9999", p2=0x98))
    assert relay.stats.queries == 2


@pytest.mark.parametrize(
    ("apdu", "why"),
    [
        ("0C20009804" + b"9999".hex(), "form whose counter"),  # secure messaging class
        ("0021009804" + b"9999".hex(), "form whose counter"),  # BER-TLV VERIFY
        ("00200198" + "04" + b"9999".hex(), "form whose counter"),  # another P1
        ("002000" + "80" + "04" + b"9999".hex(), "did not report the counter"),  # no EF current
    ],
)
def test_forms_the_floor_cannot_check_are_refused(apdu: str, why: str) -> None:
    card, _ = _cards()
    relay, events = _relay(card)
    _send(relay, select_app(JPKI))
    assert _send(relay, apdu) == REFUSED
    refusal = events[-1].refusal
    assert refusal is not None and why in refusal.reason
    assert _tries(card) == {"auth": 3, "sign": 5, "juki": 3, "helper": 3}


def test_change_and_reset_pass_the_check_and_forget_the_counters() -> None:
    card, _ = _cards()
    relay, _ = _relay(card, floor=1)
    _send(relay, select_app(JPKI))
    assert _send(relay, verify("1234", p2=0x98)) == b"\x90\x00"
    assert _send(relay, change("4321", p2=0x98)) == b"\x90\x00"
    assert _send(relay, verify("4321", p2=0x98)) == b"\x90\x00"
    assert relay.stats.queries == 2  # the counters are asked again after the CHANGE


def test_a_blocked_pin_is_refused_without_the_card_seeing_the_value() -> None:
    card, _ = _cards()
    card.block("auth")
    relay, _ = _relay(card, floor=1)
    _send(relay, select_app(JPKI))
    assert _send(relay, verify("1234", p2=0x98)) == REFUSED
    sent = [r.hex for r in relay.log.records if isinstance(r, Cmd)]
    assert sent[-2:] == ["00200098", "00200098 04 <redacted 4 bytes>"]


def test_power_events_reset_the_card_and_the_floor() -> None:
    card, _ = _cards()
    relay, events = _relay(card)
    _send(relay, select_app(JPKI))
    assert _send(relay, verify("1234", p2=0x98)) == b"\x90\x00"
    relay.power("power-off")
    relay.power("power-on")
    assert relay.floor.selection.app is None  # the floor forgot the selection too
    _send(relay, select_app(JPKI))
    # verified state went with the reset: the auth key refuses to sign
    _send(relay, select_ef(0x0017))
    signed = _send(relay, f"802A0080{len(DIGEST_INFO):02X}{DIGEST_INFO.hex()}00")
    assert signed == b"\x69\x82"
    assert [e.kind for e in events if e.kind in ("power-on", "power-off")] == [
        "power-off",
        "power-on",
    ]


def test_the_trace_is_redacted_fingerprinted_and_written_as_it_grows(tmp_path) -> None:
    card, _ = _cards()
    relay, _ = _relay(card)
    relay.trace_file = TraceFile(tmp_path / "t.jsonl")
    _send(relay, select_app(JPKI))
    _send(relay, verify("9999", p2=0x98))
    _send(relay, verify("9999", p2=0x98))
    relay.flush()  # the tap does this every 0.2 s
    text = (tmp_path / "t.jsonl").read_text()  # before any close: already on disk
    assert "39393939" not in text and "<redacted 4 bytes>" in text
    records = read_trace(tmp_path / "t.jsonl")
    cmds = [r for r in records if isinstance(r, Cmd) and r.fp]
    assert len(cmds) == 2 and cmds[0].fp == cmds[1].fp
    assert explain(records).refused == 1
    relay.trace_file.close()


class _Gone(InProcessTransport):
    """A reader whose card is pulled after *n* commands."""

    def __init__(self, card: Card, n: int) -> None:
        super().__init__(card)
        self.n = n

    def transmit(self, apdu: bytes) -> bytes:
        if self.n == 0:
            raise CardRemovedError("card removed")
        self.n -= 1
        return super().transmit(apdu)


def test_a_card_pulled_mid_exchange_ends_the_virtual_card() -> None:
    card, _ = _cards()
    lost: list[str] = []
    relay = TapRelay(_Gone(card, 1), TraceLog("tap:test", card.atr), on_lost=lost.append)
    relay.attach()
    _send(relay, select_app(JPKI))
    with pytest.raises(CardPoweredOff):
        _send(relay, "00B0000004")
    assert not relay.attached and lost and "went away" in lost[0]
    with pytest.raises(CardPoweredOff):
        _send(relay, "00B0000004")  # nothing is forwarded until a card is attached again
    assert relay.stats.lost == 1
