"""Client session for the card-surface application (券面事項確認AP, "visual AP").

Check number B opens the card-face entries, check number A those and the rendered My Number
(docs/card.md#surface-ap-files). Values are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.grammar import parse_tlvs
from emulator.grammar.ids import SURFACE
from emulator.pins import SPECS
from emulator.protocol import HOME, Pin
from harness.errors import ApduError
from harness.sessions.base import PinStatus, Session, pin_named
from harness.sessions.text import first_tlv

SURFACE_REFERENCES = (Pin.SURFACE_A, Pin.SURFACE_B)


@dataclass(frozen=True, slots=True)
class CardFace:
    """The card-face entries of EF 0002 (images as the card holds them)."""

    birth_date: str  # YYYYMMDD
    sex: str
    name_image: bytes  # PNG
    address_image: bytes  # PNG
    photo: bytes  # JPEG 2000
    expiry: str  # YYYYMMDD
    security_code_image: bytes


class SurfaceSession(Session):
    AID = SURFACE.AID
    NAME = "surface AP"

    def pin_status(self, name: str = "surface-b") -> PinStatus:
        pin = Pin(pin_named(name, SURFACE_REFERENCES, self.NAME))
        return self._pin_status(str(pin), HOME[pin].ef, SPECS[pin].max_tries)

    def verify_check_number(self, which: str, value: str | bytes) -> None:
        """VERIFY check number ``"A"`` (EF 0013) or ``"B"`` (EF 0012) [card]."""
        pin = Pin(pin_named(f"surface-{which.lower()}", (Pin.SURFACE_A, Pin.SURFACE_B), self.NAME))
        self._verify(HOME[pin].ef, value, f"surface check number {which.upper()}")

    def _record(self, fid: int, tag: int) -> dict[int, bytes]:
        outer = first_tlv(self.read_ef(fid))
        if outer.tag != tag:
            raise ApduError(0x9000, b"", f"EF {fid:04X} holds tag {outer.tag:X}, not {tag:X}")
        return {t.tag: t.value for t in parse_tlvs(outer.value)}

    def birth_date(self) -> str:
        """EF 0001's birth date (YYYYMMDD)."""
        return self._record(SURFACE.EF_BIRTH, SURFACE.TAG_BIRTH)[0xDF11].decode("ascii")

    def card_face(self) -> CardFace:
        """EF 0002 (check number A or B verified first)."""
        items = self._record(SURFACE.EF_ENTRIES, SURFACE.TAG_ENTRIES)
        return CardFace(
            birth_date=items[0xDF22].decode("ascii"),
            sex=items[0xDF23].decode("ascii"),
            name_image=items[0xDF25],
            address_image=items[0xDF26],
            photo=items[0xDF27],
            expiry=items[0xDF29].decode("ascii"),
            security_code_image=items[0xDF2A],
        )

    def ap_info(self) -> dict[int, bytes]:
        """EF 0003, AP basic data (free)."""
        return self._record(SURFACE.EF_AP_INFO, SURFACE.TAG_AP_INFO)

    def my_number_image(self) -> bytes:
        """EF 0005's rendered My Number (check number A verified first)."""
        return self._record(SURFACE.EF_MY_NUMBER, SURFACE.TAG_MY_NUMBER)[0xDF41]
