"""Naming commands and following the card's selection, for traces and their forensics.

:class:`Tracker` watches command/response pairs (the hex of a redacted trace is enough:
headers and SELECT data are never secret) and knows which application and EF, and so
which PIN, each VERIFY / CHANGE / RESET RETRY COUNTER addresses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from emulator.grammar.apdu import ApduFormatError, CommandApdu
from emulator.grammar.ids import TEXT
from emulator.protocol import APPLICATION_BY_AID, PIN_REFERENCES
from emulator.redact import SECRET_INS

logger = logging.getLogger(__name__)

APP_NAMES: dict[bytes, str] = {aid: str(app) for aid, app in APPLICATION_BY_AID.items()}

#: (application, EF) -> PIN name; ``text-0012`` is the reference blocked on every card.
PIN_EFS: dict[tuple[str, int], str] = {
    **{(str(r.app), r.ef): str(r.pin) for r in PIN_REFERENCES},
    ("text", TEXT.EF_BLOCKED_PIN): "text-0012",
}

_ISO_NAMES = {
    0xA4: "SELECT", 0x20: "VERIFY", 0x24: "CHANGE REFERENCE DATA", 0xB0: "READ BINARY",
    0xCA: "GET DATA", 0x84: "GET CHALLENGE", 0x82: "EXTERNAL AUTHENTICATE",
    0x2C: "RESET RETRY COUNTER",
}
_PROPRIETARY_NAMES = {0x2A: "COMPUTE DIGITAL SIGNATURE", 0x32: "CHANGE KEY"}

def parse(apdu: bytes) -> CommandApdu | None:
    """The command, by the card's own parser; ``None`` when it fits no ISO case."""
    try:
        return CommandApdu.from_bytes(apdu)
    except ApduFormatError:
        return None


def command_name(apdu: bytes) -> str:
    """A short human name: ``"SELECT jpki"``, ``"VERIFY (status)"``, ``"READ BINARY"``..."""
    if len(apdu) < 4:
        return "malformed"
    cla, ins, p1 = apdu[0], apdu[1], apdu[2]
    name = (_PROPRIETARY_NAMES if cla & 0x80 else _ISO_NAMES).get(ins, f"INS {ins:02X}")
    cmd = parse(apdu)
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
