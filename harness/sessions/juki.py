"""Client session for the Juki application (住基): one PIN, changed by JICSAP CHANGE KEY."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.grammar import CommandApdu
from emulator.grammar.ids import JUKI
from emulator.pins import SPECS
from harness.errors import ProtocolError
from harness.sessions.base import PinStatus, Session, to_bytes
from harness.transport import Transport

CLA_PROPRIETARY = 0x80
INS_READ_RECORD = 0xB2
INS_INTERNAL_AUTHENTICATE = 0x88
P2_RECORD = 0x04  # current EF, P1 = record number
CARD_INFO_DIGITS = 28


class JukiSession(Session):
    """The Juki PIN (``juki``). Pass ``common=True`` for the common AP, whose ``001C`` is a
    separate reference (the ``common`` PIN) with its own counter [card]; see
    :class:`CommonSession` for the rest of that application."""

    AID = JUKI.AID
    NAME = "Juki"
    PIN = "juki"

    def __init__(self, transport: Transport, *, select: bool = True, common: bool = False) -> None:
        if common:
            self.AID = JUKI.COMMON_AID
            self.NAME = "common AP"
            self.PIN = "common"
        super().__init__(transport, select=select)

    def pin_status(self, name: str = "") -> PinStatus:
        return self._pin_status(self.PIN, JUKI.EF_PIN, SPECS[self.PIN].max_tries)

    def verify(self, pin: str | bytes) -> None:
        self._verify(JUKI.EF_PIN, pin, self.NAME)

    def change(self, new: str | bytes) -> None:
        """JICSAP CHANGE KEY ``80 32 00 80`` after verifying the old value."""
        self.select_ef(JUKI.EF_PIN)
        change = CommandApdu(CLA_PROPRIETARY, JUKI.INS_JICSAP_CHANGE_KEY, 0x00, 0x80, to_bytes(new))
        self.call(change, f"CHANGE KEY {self.NAME}")


@dataclass(frozen=True, slots=True)
class CardInfo:
    """Record 1 of the common AP's EF 0001 [card]."""

    serial: str  # 15 digits
    municipality: str  # 5 digits
    expiry: str  # YYYYMMDD


class CommonSession(JukiSession):
    """The common AP (共通カードAP): its own PIN, the card-info record, INTERNAL AUTHENTICATE."""

    def __init__(self, transport: Transport, *, select: bool = True) -> None:
        super().__init__(transport, select=select, common=True)

    def read_record(self, fid: int, record: int) -> bytes:
        """READ RECORD ``00 B2 rec 04 00`` of EF *fid* (selected first)."""
        self.select_ef(fid)
        return self.call(
            CommandApdu(0x00, INS_READ_RECORD, record, P2_RECORD, b"", 256),
            f"READ RECORD EF {fid:04X} #{record}",
        )

    def card_info(self) -> CardInfo:
        raw = self.read_record(JUKI.EF_CARD_INFO, 1)
        if len(raw) != 2 + CARD_INFO_DIGITS or raw[:2] != bytes(
            (JUKI.TAG_CARD_INFO, CARD_INFO_DIGITS)
        ):
            raise ProtocolError("READ RECORD card info", "not 01 1C + 28 digits")
        text = raw[2:].decode("ascii")
        return CardInfo(text[:15], text[15:20], text[20:])

    def internal_authenticate(self, challenge: bytes) -> bytes:
        """``00 88 00 99 Lc challenge 00``: the EF 0019 key's signature, no credential [card]."""
        p2 = 0x80 | JUKI.EF_INTERNAL_AUTH_KEY
        return self.call(
            CommandApdu(0x00, INS_INTERNAL_AUTHENTICATE, 0x00, p2, challenge, 256),
            "INTERNAL AUTHENTICATE",
        )
