"""The model of a tearing run: what the card must hold after every answered command.

:mod:`harness.reliability.tearing` drives a random stream of commands (planned here) at
``myna-emu serve`` and kills it; this model says what each answer must be and what the
state file may hold afterwards. PIN values are those of a throw-away TEST card.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.commands import issuer_cryptogram
from emulator.protocol import HOME, JPKI_PINS

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
#: The two JPKI secrets, by short file identifier (docs/card.md#jpki-files, #secrets).
SFI: dict[str, int] = {pin: HOME[pin].sfi for pin in JPKI_PINS}
#: Values the stream moves between (TEST card). Index 0 is the issued value.
POOL: dict[str, list[bytes]] = {
    "auth": [b"1234", b"5678", b"0000", b"9999", b"2468"],
    "sign": [b"ABC123", b"XYZ789", b"PASS2024", b"Q1W2E3R4"],
}
OK = b"\x90\x00"
#: Commands that write the state file: the kill targets them.
WRITES = frozenset({"verify_right", "verify_wrong", "change", "rrc_set", "rrc_unblock"})


@dataclass
class PinModel:
    value: bytes
    tries: int
    max_tries: int


@dataclass
class Op:
    #: select, status, verify_right, verify_wrong, change, challenge, extauth, rrc_set or
    #: rrc_unblock
    kind: str
    pin: str = ""
    new: bytes = b""
    apdu: bytes = b""


@dataclass
class Model:
    pins: dict[str, PinModel]
    verified: set[str] = field(default_factory=set)
    issuer: bool = False
    challenge: bytes | None = None
    #: Values each PIN held earlier (to tell "an answered change was lost" from garbage).
    history: dict[str, list[bytes]] = field(default_factory=dict)

    def new_session(self) -> None:
        self.verified.clear()
        self.issuer = False
        self.challenge = None

    def expect(self, op: Op) -> Callable[[bytes], bool]:
        """A predicate on the answer the card must give to ``op`` in the current state."""
        if op.kind == "challenge":
            return lambda r: len(r) == 10 and r[-2:] == OK
        if op.kind == "select":
            return lambda r: r == OK
        if op.kind == "extauth":
            want = OK if self.challenge is not None else b"\x69\x85"
            return lambda r: r == want
        p = self.pins[op.pin]
        if op.kind == "status":
            return _eq(bytes([0x63, 0xC0 | p.tries]))
        if op.kind in ("verify_right", "verify_wrong"):
            if p.tries == 0:
                return _eq(b"\x69\x84")
            return _eq(OK if op.kind == "verify_right" else bytes([0x63, 0xC0 | (p.tries - 1)]))
        if op.kind == "change":
            return _eq(OK if op.pin in self.verified else b"\x69\x82")
        if op.kind in ("rrc_set", "rrc_unblock"):
            return _eq(OK if self.issuer else b"\x69\x82")
        raise AssertionError(op.kind)

    def apply(self, op: Op, answer: bytes) -> None:
        """Update the model with an answered command (the answer was checked already)."""
        if op.kind == "select":
            self.new_session()
        elif op.kind == "challenge":
            self.challenge = answer[:-2]
        elif op.kind == "extauth":
            self.issuer = self.challenge is not None
            self.challenge = None
        elif answer[-2:] == OK or op.kind == "verify_wrong":
            p = self.pins[op.pin] if op.pin else None
            if p is None or (op.kind == "verify_wrong" and p.tries == 0):
                return
            if op.kind == "verify_right":
                p.tries = p.max_tries
                self.verified.add(op.pin)
            elif op.kind == "verify_wrong":
                p.tries -= 1
                self.verified.discard(op.pin)
            elif op.kind in ("change", "rrc_set"):
                self.history.setdefault(op.pin, []).append(p.value)
                p.value, p.tries = op.new, p.max_tries
            elif op.kind == "rrc_unblock":
                p.tries = p.max_tries

    def outcomes(self, op: Op | None, name: str) -> set[tuple[bytes, int]]:
        """(value, tries) that PIN ``name`` may hold after ``op`` was torn (not answered)."""
        p = self.pins[name]
        now = {(p.value, p.tries)}
        if op is None or op.pin != name:
            return now
        if op.kind == "verify_right" and p.tries:
            # Decrement before compare, restore after: all three are legitimate.
            return now | {(p.value, p.tries - 1), (p.value, p.max_tries)}
        if op.kind == "verify_wrong" and p.tries:
            return now | {(p.value, p.tries - 1)}
        if op.kind == "change" and name in self.verified:
            return now | {(op.new, p.max_tries)}
        if op.kind == "rrc_set" and self.issuer:
            return now | {(op.new, p.max_tries)}
        if op.kind == "rrc_unblock" and self.issuer:
            return now | {(p.value, p.max_tries)}
        return now


def _eq(want: bytes) -> Callable[[bytes], bool]:
    return lambda r: r == want


def command_for(model: Model, op: Op) -> bytes:
    if op.kind == "select":
        return SELECT_JPKI
    if op.kind == "challenge":
        return bytes.fromhex("0084000008")
    if op.kind == "extauth":
        cryptogram = issuer_cryptogram(model.challenge or bytes(8))
        return bytes([0x00, 0x82, 0x00, 0x00, len(cryptogram)]) + cryptogram
    p2 = 0x80 | SFI[op.pin]
    p = model.pins[op.pin]
    if op.kind == "status":
        return bytes([0x00, 0x20, 0x00, p2])
    if op.kind == "verify_right":
        return bytes([0x00, 0x20, 0x00, p2, len(p.value)]) + p.value
    if op.kind == "verify_wrong":
        return bytes([0x00, 0x20, 0x00, p2, len(op.new)]) + op.new
    if op.kind == "change":
        return bytes([0x00, 0x24, 0x01, p2, len(op.new)]) + op.new
    if op.kind == "rrc_set":
        return bytes([0x00, 0x2C, 0x02, p2, len(op.new)]) + op.new
    if op.kind == "rrc_unblock":
        return bytes([0x00, 0x2C, 0x03, p2])
    raise AssertionError(op.kind)


def plan_ops(model: Model, rng: random.Random) -> list[Op]:
    """The next few commands: one user action (a re-set takes three APDUs)."""
    name = rng.choice(list(SFI))
    p = model.pins[name]
    other = [v for v in POOL[name] if v != p.value]
    action = rng.choices(
        ["status", "verify_right", "verify_wrong", "change", "reset"], [1, 2, 5, 2, 2]
    )[0]
    if action == "reset" or (p.tries == 0 and rng.random() < 0.7):
        last = (
            Op("rrc_unblock", name)
            if rng.random() < 0.3
            else Op("rrc_set", name, rng.choice(other))
        )
        return [Op("challenge"), Op("extauth"), last]
    if action == "change":
        first = [] if name in model.verified else [Op("verify_right", name)]
        return [*first, Op("change", name, rng.choice(other))]
    if action == "verify_wrong":
        return [Op("verify_wrong", name, rng.choice(other))]
    return [Op(action, name)]
