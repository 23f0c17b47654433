"""Naming commands and following the card's selection, for traces and their forensics.

:class:`Tracker` watches command/response pairs (the hex of a redacted trace is enough:
headers and SELECT data are never secret) and knows which application and EF, and so
which PIN, each VERIFY / CHANGE / RESET RETRY COUNTER addresses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from emulator.grammar.apdu import ApduFormatError, CommandApdu
from emulator.grammar.ids import TEXT
from emulator.protocol import APPLICATION_BY_AID, PIN_REFERENCES
from emulator.redact import SECRET_INS

APP_NAMES: dict[bytes, str] = {aid: str(app) for aid, app in APPLICATION_BY_AID.items()}

#: (application, EF) -> PIN name; ``text-0012`` is the reference blocked on every card.
PIN_EFS: dict[tuple[str, int], str] = {
    **{(str(r.app), r.ef): str(r.pin) for r in PIN_REFERENCES},
    ("text", TEXT.EF_BLOCKED_PIN): "text-0012",
}

_ISO_NAMES = {
    0xA4: "SELECT",
    0x20: "VERIFY",
    0x24: "CHANGE REFERENCE DATA",
    0xB0: "READ BINARY",
    0xCA: "GET DATA",
    0x84: "GET CHALLENGE",
    0x82: "EXTERNAL AUTHENTICATE",
    0x2C: "RESET RETRY COUNTER",
}
_PROPRIETARY_NAMES = {0x2A: "COMPUTE DIGITAL SIGNATURE", 0x32: "CHANGE KEY"}


class CommandKind(StrEnum):
    """What a command does, for the forensics: decided from its header and whether it carries
    data, never from a display name (renaming a label must not turn a finding off)."""

    SELECT = "select"
    READ = "read"
    VERIFY_STATUS = "verify-status"  # empty VERIFY: a counter query, spends nothing
    VERIFY = "verify"
    CHANGE = "change"  # CHANGE REFERENCE DATA, JICSAP CHANGE KEY
    RESET_NEW_VALUE = "reset-new-value"  # RESET RETRY COUNTER P1 02
    RESET_UNBLOCK = "reset-unblock"  # RESET RETRY COUNTER P1 03
    OTHER = "other"
    MALFORMED = "malformed"


def header_of(hex_text: str) -> tuple[int, int, int, int] | None:
    """``(CLA, INS, P1, P2)`` of a recorded command's (possibly redacted) hex; ``None`` when
    it does not start with four bytes of hex (headers are never redacted)."""
    compact = "".join(hex_text.split())
    try:
        header = bytes.fromhex(compact[:8])
    except ValueError:
        return None
    if len(header) < 4:
        return None
    return header[0], header[1], header[2], header[3]


def kind_of(hex_text: str) -> CommandKind:
    """The kind of a recorded command, from its (possibly redacted) hex."""
    header = header_of(hex_text)
    if header is None:
        return CommandKind.MALFORMED
    compact = "".join(hex_text.split())
    if "<" in compact:
        has_data = True  # only a data field is ever replaced (<redacted N bytes>, <cryptogram>)
    else:
        try:
            cmd = parse(bytes.fromhex(compact))
        except ValueError:
            return CommandKind.MALFORMED
        if cmd is None:
            return CommandKind.MALFORMED
        has_data = bool(cmd.data)
    return _kind(header[0], header[1], header[2], has_data)


@functools.lru_cache(maxsize=4096)
def decoded(hex_text: str) -> tuple[CommandKind, int | None, int | None, int | None, int | None]:
    """``(kind, CLA, INS, P1, P2)`` of a recorded command's hex, as :func:`kind_of` and
    :func:`header_of` give them. Memoised: a run records the same few hundred commands over
    and over, and every :class:`~harness.trace.records.Cmd` asks."""
    head = header_of(hex_text)
    if head is None:
        return CommandKind.MALFORMED, None, None, None, None
    return (kind_of(hex_text), *head)


def _kind(cla: int, ins: int, p1: int, has_data: bool) -> CommandKind:
    proprietary = bool(cla & 0x80)
    if ins in (0x20, 0x21):
        return CommandKind.VERIFY if has_data else CommandKind.VERIFY_STATUS
    if ins in (0x24, 0x25) or (proprietary and ins == 0x32):
        return CommandKind.CHANGE
    if ins in (0x2C, 0x2D):
        return CommandKind.RESET_NEW_VALUE if p1 in (0x00, 0x02) else CommandKind.RESET_UNBLOCK
    if proprietary:
        return CommandKind.OTHER
    return {0xA4: CommandKind.SELECT, 0xB0: CommandKind.READ}.get(ins, CommandKind.OTHER)


def parse(apdu: bytes) -> CommandApdu | None:
    """The command, by the card's own parser; ``None`` when it fits no ISO case."""
    try:
        return CommandApdu.from_bytes(apdu)
    except ApduFormatError:
        return None


def command_name(apdu: bytes) -> str:
    """A short human name: ``"SELECT jpki"``, ``"VERIFY (status)"``, ``"READ BINARY"``..."""
    return name_of(apdu, parse(apdu))


def name_of(apdu: bytes, cmd: CommandApdu | None) -> str:
    """:func:`command_name` of *apdu* when the caller has parsed it already (*cmd* is
    ``parse(apdu)``): a recorder parses each command once."""
    if len(apdu) < 4:
        return "malformed"
    cla, ins, p1 = apdu[0], apdu[1], apdu[2]
    name = (_PROPRIETARY_NAMES if cla & 0x80 else _ISO_NAMES).get(ins, f"INS {ins:02X}")
    data = cmd.data if cmd is not None else b""
    if ins == 0xA4 and not cla & 0x80:
        if p1 == 0x04:
            return f"SELECT {APP_NAMES.get(data, data.hex().upper())}"
        return f"SELECT EF {data.hex().upper()}"
    if ins == 0x20 and not cla & 0x80 and cmd is not None and not data:
        return "VERIFY (status)"
    return name


@dataclass(frozen=True, slots=True)
class Target:
    """What a command addressed: application, EF and (for PIN commands) the PIN."""

    app: str | None
    ef: int | None
    pin: str | None


class Tracker:
    """Follows SELECTs (and power loss) to resolve each command's application, EF and PIN."""

    def __init__(self) -> None:
        self.app: str | None = None
        self.ef: int | None = None

    def target(self, apdu: bytes) -> Target:
        """The target of *apdu* given the selection so far (call before :meth:`update`)."""
        if len(apdu) < 4:
            return Target(self.app, self.ef, None)
        cla, ins, p2 = apdu[0], apdu[1], apdu[3]
        if ins == 0xA4 and not cla & 0x80:
            return Target(self.app if apdu[2] != 0x04 else None, None, None)
        ef = self.ef
        pin_command = ins in SECRET_INS
        if pin_command and p2 & 0xE0 == 0x80 and p2 & 0x1F:
            ef = p2 & 0x1F
        pin = PIN_EFS.get((self.app or "", ef)) if pin_command and ef is not None else None
        return Target(self.app, ef, pin)

    def update(self, apdu: bytes, sw: int | None) -> None:
        """Account for *apdu* answered with *sw* (``None``: no answer, the card lost power)."""
        if sw is None:
            self.reset()
            return
        if len(apdu) < 4 or apdu[0] & 0x80 or apdu[1] != 0xA4 or sw != 0x9000:
            return
        cmd = parse(apdu)
        data = cmd.data if cmd is not None else b""
        if apdu[2] == 0x04:
            self.app, self.ef = APP_NAMES.get(data, data.hex()), None
        elif len(data) == 2:
            self.ef = int.from_bytes(data, "big")

    def reset(self) -> None:
        self.app = self.ef = None
