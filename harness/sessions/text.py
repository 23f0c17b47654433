"""Client session for the card-info input helper application (券面事項入力補助AP)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from emulator.grammar import parse_tlvs
from emulator.grammar.ids import TEXT
from emulator.pins import SPECS
from harness.errors import ApduError
from harness.sessions.base import PinStatus, Session

logger = logging.getLogger(__name__)



MY_NUMBER_SIZE = 17
TAG_NAME, TAG_ADDRESS, TAG_BIRTH, TAG_SEX = 0xDF22, 0xDF23, 0xDF24, 0xDF25


@dataclass(frozen=True, slots=True)
class BasicFour:
    """The basic four attributes (基本4情報)."""

    name: str
    address: str
    birth_date: str  # YYYYMMDD
    sex: str  # ISO 5218


class TextSession(Session):
    """Input helper: the ``helper`` PIN guards the My Number and the basic four attributes."""

    AID = TEXT.AID
    NAME = "text AP"

    def pin_status(self, name: str = "helper") -> PinStatus:
        return self._pin_status("helper", TEXT.EF_PIN, SPECS["helper"].max_tries)

    def verify(self, pin: str | bytes) -> None:
        self._verify(TEXT.EF_PIN, pin, "text helper")

    def change(self, new: str | bytes) -> None:
        self._change(TEXT.EF_PIN, new, "text helper")

    def my_number(self) -> str:
        """The 12-digit individual number (PIN verified first), parsed with the TLV grammar."""
        raw = self.read_ef(TEXT.EF_MY_NUMBER, MY_NUMBER_SIZE)
        tlv = parse_tlvs(raw[:15])[0]
        if tlv.tag != TEXT.TAG_MY_NUMBER:
            raise ApduError(0x9000, b"", f"EF 0001 holds tag {tlv.tag:X}, not FF10")
        return tlv.value.decode("ascii")

    def basic_four(self) -> BasicFour:
        """Name, address, birth date and sex from EF 0002 (PIN verified first)."""
        outer = parse_tlvs(self.read_ef(TEXT.EF_BASIC_FOUR))[0]
        if outer.tag != TEXT.TAG_BASIC_FOUR:
            raise ApduError(0x9000, b"", f"EF 0002 holds tag {outer.tag:X}, not FF20")
        items = {t.tag: t.value for t in parse_tlvs(outer.value)}
        return BasicFour(
            name=items[TAG_NAME].decode("utf-8"),
            address=items[TAG_ADDRESS].decode("utf-8"),
            birth_date=items[TAG_BIRTH].decode("ascii"),
            sex=items[TAG_SEX].decode("ascii"),
        )
