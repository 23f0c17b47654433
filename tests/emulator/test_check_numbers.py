"""Check numbers A and B (docs/card.md#check-numbers): VERIFY, tries, blocking, what each
opens, the refused change commands, cards issued without them, and redaction."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from emulator.card import Card
from emulator.commands import issuer_cryptogram
from emulator.identity import check_number_a, check_number_b, era_date
from emulator.protocol import CHECK_NUMBER_TRIES, CHECK_NUMBERS, HOME, Pin
from emulator.redact import redact_command
from emulator.state import CardState, StateError, dump_json, load_json
from harness.cards import HOLDER
from tests.conftest import Link
from tests.emulator.apdus import OK, SURFACE, TEXT, read, select_app, select_ef, sw_of, verify
from tests.support.cards import fresh_state

#: (reference, AID, P2 by SFI, which value)
REFS = [
    (Pin.TEXT_A, TEXT, 0x94, "A"),
    (Pin.TEXT_B, TEXT, 0x95, "B"),
    (Pin.SURFACE_A, SURFACE, 0x93, "A"),
    (Pin.SURFACE_B, SURFACE, 0x92, "B"),
]
IDS = [str(r[0]) for r in REFS]


def _value(link: Link, which: str) -> str:
    holder = link.card.state.holder
    return check_number_a(holder) if which == "A" else check_number_b(holder)


def _wrong(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def test_the_values_follow_the_card_face() -> None:
    """A = the My Number; B = birth YYMMDD in the era year + expiry year + security code."""
    state = fresh_state(holder_seed=7)
    h = state.holder
    assert check_number_a(h) == h.my_number and len(h.my_number) == 12
    b = check_number_b(h)
    assert len(b) == 14 and b.isdigit()
    assert b == era_date(h.birth_date) + h.expiry[:4] + h.security_code
    assert era_date("19850315") == "600315"  # Showa 60
    assert era_date("19890107") == "640107" and era_date("19890108") == "010108"  # Heisei 1
    assert era_date("20190501") == "010501"  # Reiwa 1
    assert set(CHECK_NUMBERS) <= set(state.pins)


@pytest.mark.parametrize(("ref", "aid", "p2", "which"), REFS, ids=IDS)
def test_verify_tries_and_blocking(link: Link, ref: Pin, aid: str, p2: int, which: str) -> None:
    good = _value(link, which)
    assert link.sw(select_app(aid)) == OK
    assert link.sw(verify(b"", p2)) == 0x63C0 | CHECK_NUMBER_TRIES  # status, nothing spent
    assert link.sw(verify(_wrong(good), p2)) == 0x63C0 | (CHECK_NUMBER_TRIES - 1)
    assert link.sw(verify(good, p2)) == OK  # restores the counter
    assert link.card.state.pins[ref].tries_left == CHECK_NUMBER_TRIES
    assert link.sw(verify(good[:-1], p2)) == 0x6700  # impossible length: nothing spent
    assert link.sw(verify(good + "0", p2)) == 0x6700
    for n in range(CHECK_NUMBER_TRIES - 1, -1, -1):
        assert link.sw(verify(_wrong(good), p2)) == 0x63C0 | n
    assert link.sw(verify(good, p2)) == 0x6984
    assert link.sw(verify(b"", p2)) == 0x63C0
    # the four PINs and the other check numbers are untouched
    for name, rec in link.card.state.pins.items():
        if name != ref:
            assert rec.tries_left == rec.max_tries, name


@pytest.mark.parametrize(("ref", "aid", "p2", "which"), REFS, ids=IDS)
def test_current_ef_form(link: Link, ref: Pin, aid: str, p2: int, which: str) -> None:
    assert link.sw(select_app(aid)) == OK
    assert link.sw(select_ef(HOME[ref].ef)) == OK
    assert link.sw(verify(_value(link, which))) == OK


def _readable(link: Link, fid: int) -> bool:
    assert link.sw(select_ef(fid)) == OK
    sw = sw_of(link.send(read(0, 1)))
    assert sw in (OK, 0x6982)
    return sw == OK


@pytest.mark.parametrize(
    ("aid", "p2", "which", "opens", "closed"),
    [
        (TEXT, 0x94, "A", [0x0001, 0x0003, 0x0004, 0x0005, 0x0008], [0x0002]),
        (TEXT, 0x95, "B", [0x0002, 0x0003, 0x0004, 0x0005, 0x0008], [0x0001]),
        (TEXT, None, "-", [0x0004, 0x0005, 0x0008], [0x0001, 0x0002, 0x0003]),
        (SURFACE, 0x93, "A", [0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006], []),
        (SURFACE, 0x92, "B", [0x0001, 0x0002, 0x0003, 0x0004, 0x0006], [0x0005]),
        (SURFACE, None, "-", [0x0003, 0x0004], [0x0001, 0x0002, 0x0005, 0x0006]),
    ],
)
def test_what_each_check_number_opens(
    link: Link, aid: str, p2: int | None, which: str, opens: list[int], closed: list[int]
) -> None:
    """[card]: A opens the My Number, B the attributes, either the integrity record."""
    assert link.sw(select_app(aid)) == OK
    if p2 is not None:
        assert link.sw(verify(_value(link, which), p2)) == OK
    assert [f for f in opens if not _readable(link, f)] == []
    assert [f for f in closed if _readable(link, f)] == []


def test_a_check_number_of_one_application_opens_nothing_in_another(link: Link) -> None:
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw(verify(_value(link, "B"), 0x95)) == OK
    assert link.sw(select_app(SURFACE)) == OK  # a SELECT clears the verified state anyway
    assert not _readable(link, 0x0002)


@pytest.mark.parametrize(("ref", "aid", "p2", "which"), REFS, ids=IDS)
def test_no_command_changes_a_check_number(
    link: Link, ref: Pin, aid: str, p2: int, which: str
) -> None:
    """Printed on the card: CHANGE and RESET with a new value answer 6986 [model]; the
    counter's unblock (RESET RETRY COUNTER P1 03) works as for a PIN."""
    good = _value(link, which)
    assert link.sw(select_app(aid)) == OK
    assert link.sw(verify(good, p2)) == OK
    raw = good.encode().hex()
    assert link.sw(f"002401{p2:02X}{len(good):02X}{raw}") == 0x6986
    assert link.sw(f"803200{p2:02X}{len(good):02X}{raw}") in (0x6985, 0x6D00)
    link.card.block(ref)
    challenge = link.send("0084000008")[:-2]
    assert link.sw(f"0082000010{issuer_cryptogram(challenge).hex()}") == OK
    assert link.sw(f"002C02{p2:02X}{len(good):02X}{raw}") == 0x6986
    assert link.sw(f"002C03{p2:02X}") == OK
    assert link.card.state.pins[ref].tries_left == CHECK_NUMBER_TRIES
    assert link.sw(verify(good, p2)) == OK


def test_check_numbers_are_not_chosen_at_init() -> None:
    with pytest.raises(ValueError, match="unknown PIN name 'text-a'"):
        fresh_state(pin_overrides={"text-a": "123456789012"})


# --- cards issued without check numbers ----------------------------------------------------


def _v1(state: CardState) -> dict[str, object]:
    """*state* as a version-1 export: no check numbers, no expiry or security code."""
    doc = json.loads(dump_json(state))
    doc["version"] = 1
    for name in (*CHECK_NUMBERS, "common"):
        del doc["pins"][name]
    del doc["holder"]["expiry"], doc["holder"]["security_code"]
    return doc


def test_a_version_1_export_imports_without_check_numbers_or_common_pin(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_v1(fresh_state())))
    state = load_json(path)
    assert not set(CHECK_NUMBERS) & set(state.pins)
    card = Card.create(tmp_path / "old.db", state)
    card.power_on()
    t = card.transmit

    def sw(hexstr: str) -> int:
        return sw_of(t(bytes.fromhex(hexstr)))

    assert sw(select_app(TEXT)) == OK
    assert sw(select_ef(0x0014)) == 0x6A82  # absent, not blocked
    assert sw(verify("123456789012", 0x95)) == 0x6A88
    assert sw(verify("2345", 0x91)) == OK
    assert sw("00B0830001") == OK  # the PIN still opens the integrity record
    assert sw(select_app(SURFACE)) == OK
    assert sw(select_ef(0x0002)) == OK
    assert sw(read(0, 1)) == 0x6982  # nothing opens the surface data
    assert sw(verify("1", 0x92)) == 0x6A88
    assert sw(select_app("D3921000310001010100")) == OK
    assert sw(select_ef(0x001C)) == 0x6A82  # no common-AP PIN on an old card
    assert sw("00B2010C00") == 0x6A82  # nor the card-info record (no expiry date)
    card.close()
    again = Card.open(tmp_path / "old.db")  # and the database re-opens
    assert not set(CHECK_NUMBERS) & set(again.state.pins)
    again.close()


@pytest.mark.parametrize("drop", ["some-check-numbers", "holder-code"])
def test_half_a_set_of_check_numbers_is_refused(drop: str) -> None:
    doc = json.loads(dump_json(fresh_state()))
    if drop == "some-check-numbers":
        del doc["pins"]["surface-b"]
        match = "check number 'surface-b'"
    else:
        doc["holder"]["security_code"] = ""
        match = "security_code"
    with pytest.raises(StateError, match=match):
        CardState.from_json(doc)


@pytest.mark.parametrize(("key", "value"), [("expiry", "2030"), ("security_code", "12a4")])
def test_bad_holder_fields_are_refused(key: str, value: str) -> None:
    doc = json.loads(dump_json(fresh_state()))
    doc["holder"][key] = value
    with pytest.raises(StateError, match=key):
        CardState.from_json(copy.deepcopy(doc))


# --- no value in logs or traces ------------------------------------------------------------


@pytest.mark.parametrize("p2", [0x80, 0x92, 0x93, 0x94, 0x95])
@pytest.mark.parametrize("cla", [0x00, 0x0C])
def test_check_number_verify_is_redacted(p2: int, cla: int) -> None:
    value = b"02040120301357"
    raw = bytes((cla, 0x20, 0x00, p2, len(value))) + value
    text = redact_command(raw)
    assert value.hex().upper() not in text and "redacted 14 bytes" in text


def test_the_scenario_golden_trace_holds_no_check_number() -> None:
    golden = Path(__file__).resolve().parents[2] / "harness" / "trace" / "golden_traces"
    a, b = check_number_a(HOLDER), check_number_b(HOLDER)
    for name in ("lockout-check-b.jsonl", "lockout-check-b@face-auth.jsonl"):
        text = (golden / name).read_text()
        for value in (a, b):
            assert value not in text and value.encode().hex().upper() not in text
