"""Stateful APDU fuzzing of the in-process card (issue 6, item 2).

A hypothesis ``RuleBasedStateMachine`` sends a mix of plausible and random APDUs, resets,
power cycles and torn VERIFYs, and checks after every exchange:

* every answer ends in a valid status word (>= 2 bytes, SW1 in 61..6F or 90), never 6F00
  (the dispatcher's "a handler raised" answer);
* a retry counter never rises except on a 9000 to a command allowed to restore it (VERIFY
  with data, CHANGE, CHANGE KEY, RESET RETRY COUNTER), never drops by more than one;
* a blocked PIN stays blocked unless RESET RETRY COUNTER answered 9000;
* a VERIFY answered 9000 carried the addressed PIN's current value; a CHANGE answered 9000
  followed a VERIFY of that PIN in the session; a re-set answered 9000 followed issuer
  authentication (the fuzzer models the volatile security state to know);
* the card still answers a SELECT when the run ends.

Seen to fail (in-memory sabotage of the card, 100 examples each): a PIN compare that looks
at 3 bytes only, RESET RETRY COUNTER without the issuer check, a handler raising on large
READ BINARY offsets, a wrong VERIFY giving its try back, CHANGE without a prior VERIFY.

Budget: a few seconds by default; ``MYNA_FUZZ_EXAMPLES=2000`` (and optionally
``MYNA_FUZZ_STEPS``) for a longer run. Findings become regression tests in
``tests/emulator`` / ``tests/grammar``.
"""

from __future__ import annotations

import copy
import functools
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from emulator.card import Card, Faults
from emulator.commands import issuer_cryptogram
from emulator.errors import CardPoweredOff
from emulator.grammar import CommandApdu
from emulator.identity import check_number_a, check_number_b
from emulator.pins import DEFAULT_PINS
from emulator.state import CardState, Quirks
from tests.support.cards import fresh_state

EXAMPLES = int(os.environ.get("MYNA_FUZZ_EXAMPLES", "50"))
STEPS = int(os.environ.get("MYNA_FUZZ_STEPS", "40"))

AIDS = [
    bytes.fromhex(a)
    for a in (
        "D392F000260100000001",
        "D3921000310001010408",
        "D3921000310001010402",
        "D3921000310001010401",
        "D3921000310001010100",
        "A0000001510000",
    )
]
FIDS = [
    0x0001,
    0x0002,
    0x0003,
    0x0004,
    0x0005,
    0x0006,
    0x0008,
    0x000A,
    0x000B,
    0x0011,
    0x0012,
    0x0013,
    0x0014,
    0x0015,
    0x0017,
    0x0018,
    0x0019,
    0x001A,
    0x001B,
    0x001C,
    0x3F00,
]
#: PIN reference P2s (80 = current EF) and the PIN each SFI names (in its PIN_APP).
PIN_P2 = {
    0x98: "auth",
    0x9B: "sign",
    0x9C: "juki",
    0x91: "helper",
    0x92: None,
    0x80: None,
    0x94: "text-a",
    0x95: "text-b",
    0x93: "surface-a",
}
#: The application each PIN reference lives in (for the plausible, "client-like" flows).
PIN_APP = {
    0x98: AIDS[0],
    0x9B: AIDS[0],
    0x9C: AIDS[3],
    0x91: AIDS[1],
    0x92: AIDS[1],
    0x94: AIDS[1],
    0x95: AIDS[1],
    0x93: AIDS[2],
}
#: Commands that may legitimately restore a counter when answered 9000: (CLA class, INS).
RESTORING = {(0x00, 0x20), (0x00, 0x24), (0x80, 0x32), (0x00, 0x2C)}

byte = st.integers(0, 0xFF)
values = st.sampled_from(
    ["", "0000", "1234", "ABC123", "abc123", "3456", "2345", "12345", "ZZZZZZZZZZZZZZZZZ", "A1B2C3"]
).map(str.encode) | st.binary(max_size=20)
#: Valid new values for the PINs (digits for the 4-digit PINs, A-Z0-9 for the password).
new_values = st.sampled_from(["9999", "0001", "NEWPASS1", "Z9Z9Z9Z9Z9Z9Z9Z9"]).map(str.encode)


@functools.cache
def _template(profile: str) -> CardState:
    return fresh_state(profile=profile)


@functools.cache
def _card(profile: str) -> Card:
    return Card(copy.deepcopy(_template(profile)))


def _reused_card(profile: str, quirk: bool) -> Card:
    """A card in its fresh state without re-loading RSA keys (80 ms) for every example.

    The file model (keys, certificates, holder data) is immutable; everything an APDU can
    change lives in ``card.state`` (counters, PIN hashes) and the session, reset here.
    """
    card = _card(profile)
    state = copy.deepcopy(_template(profile))
    state.quirks = Quirks(status_9000_after_verify=quirk)
    card.reissue_in_memory(state)
    card.power_on()
    return card


def _data(raw: bytes) -> bytes:
    try:
        return CommandApdu.from_bytes(raw).data
    except ValueError:
        return b""


def _valid_sw(response: bytes) -> bool:
    return len(response) >= 2 and (0x61 <= response[-2] <= 0x6F or response[-2] == 0x90)


class CardFuzzer(RuleBasedStateMachine):
    profile = "standard"

    def __init__(self) -> None:
        super().__init__()
        self.card: Card | None = None
        self.pins: dict[str, bytes] = {}
        self.issuer_ok = False
        self.verified: set[str] = set()

    @initialize(quirk=st.booleans())
    def power_up(self, quirk: bool) -> None:
        self.card = _reused_card(self.profile, quirk)
        holder = self.card.state.holder
        a, b = check_number_a(holder), check_number_b(holder)
        known = {
            **DEFAULT_PINS,
            "common": DEFAULT_PINS["juki"],
            "text-a": a,
            "surface-a": a,
            "text-b": b,
            "surface-b": b,
        }
        self.pins = {n: known[n].encode() for n in self.card.state.pins}

    # --- the one place APDUs go through --------------------------------------------------------

    def send(self, raw: bytes) -> bytes:
        card = self.card
        assert card is not None
        if not card.powered:
            card.power_on()
        target = self._target_pin(raw)
        before = {n: (r.tries_left, r.salt) for n, r in card.state.pins.items()}
        try:
            response = card.transmit(raw)
        except CardPoweredOff:  # an injected tear: the exchange has no answer
            response = None
        after = {n: (r.tries_left, r.salt) for n, r in card.state.pins.items()}
        assert response is None or _valid_sw(response), response
        assert response is None or response[-2:] != b"\x6f\x00", f"handler raised on {raw.hex()}"
        ok = response is not None and response[-2:] == b"\x90\x00"
        cmd = (raw[0] & 0x80, raw[1]) if len(raw) >= 2 else None
        data = _data(raw) if ok else b""
        if ok and cmd == (0x00, 0x20) and data:  # a VERIFY accepted: right PIN, right value
            assert target is not None and data == self.pins[target], f"accepted {raw.hex()}"
        if ok and cmd in {(0x00, 0x24), (0x80, 0x32)}:
            assert target in self.verified, f"{target} changed without VERIFY: {raw.hex()}"
        if ok and cmd == (0x00, 0x2C):
            assert self.issuer_ok, f"{target} re-set without issuer authentication"
        for name, (old, old_salt) in before.items():
            new, new_salt = after[name]
            assert new >= old - 1, f"{name}: {old} -> {new} in one APDU"
            if new > old:
                assert ok and cmd in RESTORING, f"{name} rose {old} -> {new} on {raw.hex()}"
            if old == 0 and new > 0:
                assert cmd == (0x00, 0x2C), f"blocked {name} unblocked by {raw.hex()}"
            if new_salt != old_salt:
                assert ok and cmd in RESTORING - {(0x00, 0x20)}, f"{name} changed by {raw.hex()}"
                self.pins[name] = data
        self._track_session(raw, response, target)
        return response or b""

    def _target_pin(self, raw: bytes) -> str | None:
        """The PIN a VERIFY / CHANGE / RESET would address (P2 80: current EF; 80|SFI)."""
        session = self.card.session if self.card else None
        if session is None or len(raw) < 4 or raw[1] not in (0x20, 0x24, 0x32, 0x2C):
            return None
        p2 = raw[3]
        if p2 == 0x80:
            ef = session.ef
        else:
            ef = session.app.by_sfi(p2 & 0x1F) if session.app and p2 & 0xE0 == 0x80 else None
        return getattr(ef, "pin", None)

    def _track_session(self, raw: bytes, response: bytes | None, target: str | None) -> None:
        """Model of the volatile security state: verified PINs and issuer authentication,
        both lost on application selection, reset and power loss."""
        ok = response is not None and response[-2:] == b"\x90\x00"
        if response is None or not self.card or not self.card.powered:
            self.issuer_ok = False
            self.verified.clear()
        elif ok and raw[:4] == b"\x00\x82\x00\x00":
            self.issuer_ok = True
        elif ok and raw[:3] == b"\x00\xa4\x04":
            self.issuer_ok = False
            self.verified.clear()
        elif raw[:2] == b"\x00\x20" and target is not None and _data(raw):
            if ok:
                self.verified.add(target)
            elif (response[-2] & 0xF0, response[-1] & 0xF0) == (0x60, 0xC0):
                self.verified.discard(target)

    # --- rules ---------------------------------------------------------------------------------

    @rule(aid=st.sampled_from(AIDS) | st.binary(max_size=16), p2=st.sampled_from([0x0C, 0x00]))
    def select_app(self, aid: bytes, p2: int) -> None:
        self.send(bytes((0, 0xA4, 4, p2, len(aid))) + aid if aid else bytes((0, 0xA4, 4, p2)))

    @rule(fid=st.sampled_from(FIDS) | st.integers(0, 0xFFFF))
    def select_ef(self, fid: int) -> None:
        self.send(bytes((0, 0xA4, 2, 0x0C, 2)) + fid.to_bytes(2, "big"))

    def _select_for(self, p2: int) -> None:
        aid = PIN_APP.get(p2, AIDS[0])
        self.send(bytes((0, 0xA4, 4, 0x0C, len(aid))) + aid)

    @rule(
        p2=st.sampled_from(sorted(PIN_P2)) | byte,
        value=values,
        which=st.sampled_from(["right", "near-miss", "drawn"]),
        select_first=st.booleans(),
    )
    def verify(self, p2: int, value: bytes, which: str, select_first: bool) -> None:
        """VERIFY with the PIN's value, a near miss of it (last byte changed), or *value*."""
        if select_first:
            self._select_for(p2)
        name = PIN_P2.get(p2)
        if which != "drawn" and name in self.pins:
            value = self.pins[name]
            if which == "near-miss":
                value = value[:-1] + bytes(((value[-1] - 0x30 + 1) % 10 + 0x30,))
        head = bytes((0, 0x20, 0, p2))
        self.send(head + (bytes((len(value),)) + value if value else b""))

    @rule(
        p2=st.sampled_from(sorted(PIN_P2)),
        value=values | new_values,
        ins=st.sampled_from([(0x00, 0x24, 0x01), (0x80, 0x32, 0x00)]),
        flow=st.booleans(),
    )
    def change(self, p2: int, value: bytes, ins: tuple[int, int, int], flow: bool) -> None:
        """A bare CHANGE, or the client's flow: select, VERIFY the current value, CHANGE."""
        if flow:
            self._select_for(p2)
            self.verify(p2, b"", "right", False)
        if value:
            self.send(bytes((ins[0], ins[1], ins[2], p2, len(value))) + value)

    @rule(good=st.booleans())
    def issuer_authenticate(self, good: bool) -> None:
        r = self.send(bytes.fromhex("0084000008"))
        challenge = r[:-2] if r[-2:] == b"\x90\x00" else bytes(8)
        cryptogram = issuer_cryptogram(challenge) if good else bytes(16)
        self.send(bytes.fromhex("0082000010") + cryptogram)

    @rule(
        p1=st.sampled_from([0x02, 0x03]) | byte,
        p2=st.sampled_from(sorted(PIN_P2)),
        value=values | new_values,
        flow=st.sampled_from(["bare", "select", "authenticated"]),
    )
    def reset_retry_counter(self, p1: int, p2: int, value: bytes, flow: str) -> None:
        if flow != "bare":
            self._select_for(p2)
        if flow == "authenticated":
            self.issuer_authenticate(True)
        data = bytes((len(value),)) + value if value and p1 != 0x03 else b""
        self.send(bytes((0, 0x2C, p1, p2)) + data)

    @rule(p1=byte, p2=byte, le=st.sampled_from([0, 1, 4, 17, 255]) | byte, extended=st.booleans())
    def read_binary(self, p1: int, p2: int, le: int, extended: bool) -> None:
        tail = b"\x00" + le.to_bytes(2, "big") if extended else bytes((le,))
        self.send(bytes((0, 0xB0, p1, p2)) + tail)

    @rule(
        p1=st.integers(0, 7),
        p2=st.sampled_from([0x80, 0x97, 0x9A]) | byte,
        data=st.binary(min_size=0, max_size=40),
    )
    def sign(self, p1: int, p2: int, data: bytes) -> None:
        body = bytes((len(data),)) + data + b"\x00" if data else b"\x00"
        self.send(bytes((0x80, 0x2A, p1, p2)) + body)

    @rule(
        p1=st.sampled_from([0, 1, 2]) | byte,
        p2=st.sampled_from([0x04, 0x05, 0x0C]) | byte,
        le=st.none() | byte,
    )
    def read_record(self, p1: int, p2: int, le: int | None) -> None:
        self.send(bytes((0, 0xB2, p1, p2)) + (b"" if le is None else bytes((le,))))

    @rule(
        p2=st.sampled_from([0x99, 0x97, 0x80]) | byte,
        data=st.binary(max_size=40),
        le=st.none() | byte,
    )
    def internal_authenticate(self, p2: int, data: bytes, le: int | None) -> None:
        body = (bytes((len(data),)) + data if data else b"") + (b"" if le is None else bytes((le,)))
        self.send(bytes((0, 0x88, 0, p2)) + body)

    @rule(raw=st.binary(max_size=24))
    def random_bytes(self, raw: bytes) -> None:
        self.send(raw)

    @rule(
        header=st.binary(min_size=4, max_size=4), data=st.binary(max_size=20), le=st.none() | byte
    )
    def random_command(self, header: bytes, data: bytes, le: int | None) -> None:
        body = (bytes((len(data),)) + data if data else b"") + (b"" if le is None else bytes((le,)))
        self.send(header + body)

    @rule(cold=st.booleans())
    def reset(self, cold: bool) -> None:
        assert self.card is not None
        if cold:
            self.card.power_off()
        self.card.reset()
        self.issuer_ok = False
        self.verified.clear()

    @rule(pin_p2=st.sampled_from([0x98, 0x9B, 0x9C, 0x91]))
    def torn_verify(self, pin_p2: int) -> None:
        """Power drops right after the decrement: a correct PIN may cost a try, never gain one."""
        assert self.card is not None
        self.card.faults.tear_after_decrement = 1
        value = self.pins.get(PIN_P2[pin_p2] or "", b"1234")
        self.send(bytes((0, 0x20, 0, pin_p2, len(value))) + value)
        self.card.faults.tear_after_decrement = 0

    def teardown(self) -> None:
        if self.card is None:
            return
        self.card.faults = Faults()
        r = self.send(bytes.fromhex("00A4040C0AD392F000260100000001"))
        assert r == b"\x90\x00", "the card must still answer SELECT"


class FaceAuthCardFuzzer(CardFuzzer):
    profile = "face-auth"


_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CardFuzzer.TestCase.settings = _SETTINGS
FaceAuthCardFuzzer.TestCase.settings = _SETTINGS

TestStandardCard = CardFuzzer.TestCase
TestFaceAuthCard = FaceAuthCardFuzzer.TestCase
