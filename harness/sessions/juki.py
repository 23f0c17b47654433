"""Client session for the Juki application (住基): one PIN, changed by JICSAP CHANGE KEY."""

from __future__ import annotations

import logging

from emulator.grammar import CommandApdu
from emulator.grammar.ids import JUKI
from emulator.pins import SPECS
from harness.sessions.base import PinStatus, Session, to_bytes
from harness.transport import Transport

logger = logging.getLogger(__name__)


CLA_PROPRIETARY = 0x80


class JukiSession(Session):
    """The Juki PIN (``juki``). Pass ``common=True`` for the common AP that shares it [model]."""

    AID = JUKI.AID
    NAME = "Juki"

    def __init__(self, transport: Transport, *, select: bool = True, common: bool = False) -> None:
        if common:
            self.AID = JUKI.COMMON_AID
            self.NAME = "common AP"
        super().__init__(transport, select=select)

    def pin_status(self, name: str = "juki") -> PinStatus:
        return self._pin_status("juki", JUKI.EF_PIN, SPECS["juki"].max_tries)

    def verify(self, pin: str | bytes) -> None:
        self._verify(JUKI.EF_PIN, pin, "Juki")

    def change(self, new: str | bytes) -> None:
        """JICSAP CHANGE KEY ``80 32 00 80`` after verifying the old value."""
        self.select_ef(JUKI.EF_PIN)
        change = CommandApdu(CLA_PROPRIETARY, JUKI.INS_JICSAP_CHANGE_KEY, 0x00, 0x80, to_bytes(new))
        self.call(change, "CHANGE KEY Juki")
