"""Client session for the card-info input helper application (券面事項入力補助AP)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.grammar import Tlv, parse_tlvs
from emulator.grammar.ids import CVC, TEXT
from emulator.pins import SPECS
from emulator.protocol import HOME, Pin
from harness.errors import ApduError
from harness.sessions.base import PinStatus, Session, pin_named

MY_NUMBER_SIZE = 17
#: Clients read EF 0003 as 336 bytes and EF 0005 as 256 [client].
SIGNATURE_SIZE = 336
AP_INFO_SIZE = 256
SIGNED_SIZE = 70  # the two digest TLVs the signature covers
TAG_NAME, TAG_ADDRESS, TAG_BIRTH, TAG_SEX = 0xDF22, 0xDF23, 0xDF24, 0xDF25
#: The text AP's references by name: the PIN and the two check numbers.
TEXT_REFERENCES = (Pin.HELPER, Pin.TEXT_A, Pin.TEXT_B)


@dataclass(frozen=True, slots=True)
class BasicFour:
    """The basic four attributes (基本4情報)."""

    name: str
    address: str
    birth_date: str  # YYYYMMDD
    sex: str  # ISO 5218


@dataclass(frozen=True, slots=True)
class Integrity:
    """What EF 0003-0005 say about EF 0001 / 0002, checked the way a client checks it."""

    my_number_ok: bool | None  # DF31 == SHA-256 of EF 0001 (filler included); None: not read
    attributes_ok: bool  # DF32 == SHA-256 of EF 0002 from DF22 to the end
    signature_ok: bool  # DF33 verifies over the first 70 bytes with the key in EF 0004
    key_id_ok: bool  # EF 0005's key id is the subject key id of EF 0004

    @property
    def ok(self) -> bool:
        return (
            self.my_number_ok is not False
            and self.attributes_ok
            and self.signature_ok
            and self.key_id_ok
        )


def first_tlv(raw: bytes) -> Tlv:
    """The first BER-TLV object of *raw* (a two-byte tag), whatever filler follows it."""
    first = raw[2]
    n = first if first < 0x80 else int.from_bytes(raw[3 : 3 + (first & 0x7F)], "big")
    size = 3 + (0 if first < 0x80 else first & 0x7F) + n
    return parse_tlvs(raw[:size])[0]


def cvc_public_key(cert: bytes) -> tuple[bytes, bytes, rsa.RSAPublicKey]:
    """(issuer key id, subject key id, public key) of a ``7F21`` card-verifiable certificate."""
    outer = parse_tlvs(cert)[0]
    if outer.tag != CVC.TAG_CERT:
        raise ApduError(0x9000, b"", f"not a card-verifiable certificate (tag {outer.tag:X})")
    body = next(t for t in parse_tlvs(outer.value) if t.tag == CVC.TAG_BODY).value
    issuer_id, subject_id = body[:16], body[16:32]
    key = {t.tag: t.value for t in parse_tlvs(body[32:])}
    n = int.from_bytes(key[CVC.TAG_MODULUS], "big")
    e = int.from_bytes(key[CVC.TAG_EXPONENT], "big")
    return issuer_id, subject_id, rsa.RSAPublicNumbers(e, n).public_key()


class TextSession(Session):
    """Input helper: the ``helper`` PIN, or check number A / B, guards the My Number and the
    basic four attributes (docs/card.md#check-numbers)."""

    AID = TEXT.AID
    NAME = "text AP"

    def pin_status(self, name: str = "helper") -> PinStatus:
        """The counter of the PIN (``helper``) or of a check number (``text-a``, ``text-b``)."""
        pin = Pin(pin_named(name, TEXT_REFERENCES, self.NAME))
        return self._pin_status(str(pin), HOME[pin].ef, SPECS[pin].max_tries)

    def verify_check_number(self, which: str, value: str | bytes) -> None:
        """VERIFY check number ``"A"`` (the My Number) or ``"B"`` [card]; never logged."""
        pin = Pin(pin_named(f"text-{which.lower()}", (Pin.TEXT_A, Pin.TEXT_B), self.NAME))
        self._verify(HOME[pin].ef, value, f"text check number {which.upper()}")

    def signature_record(self) -> bytes:
        """EF 0003 as clients read it: 336 bytes (the PIN or either check number first)."""
        return self.read_ef(TEXT.EF_SIGNATURE, SIGNATURE_SIZE)

    def certificate(self) -> bytes:
        """EF 0004, the AP's card-verifiable certificate (free)."""
        head = self.read_ef(TEXT.EF_CERT, 5)
        size = len(Tlv(CVC.TAG_CERT, bytes(int.from_bytes(head[3:5], "big"))).to_bytes())
        return self.read_ef(TEXT.EF_CERT, size)

    def ap_info(self) -> bytes:
        """EF 0005, AP basic info (free): 256 bytes read."""
        return self.read_ef(TEXT.EF_AP_INFO, AP_INFO_SIZE)

    def integrity(self, *, with_my_number: bool = True) -> Integrity:
        """Read EF 0001-0005 and check the digests and the signature [client]. The PIN, or
        both check numbers, must be verified; check number B alone opens all but EF 0001:
        pass ``with_my_number=False`` (the My Number digest is then not checked)."""
        number = self.read_ef(TEXT.EF_MY_NUMBER, MY_NUMBER_SIZE) if with_my_number else None
        four = self.read_ef(TEXT.EF_BASIC_FOUR)
        record = first_tlv(self.signature_record())
        items = parse_tlvs(record.value)
        by_tag = {t.tag: t.value for t in items}
        _, subject_id, key = cvc_public_key(self.certificate())
        info = self.ap_info()
        start = int.from_bytes(four[four.index(b"\xdf\x21\x08") + 3 :][:2], "big")
        try:
            key.verify(
                by_tag[TEXT.TAG_SIGNATURE_VALUE],
                record.value[:SIGNED_SIZE],
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            signature_ok = True
        except InvalidSignature:
            signature_ok = False
        return Integrity(
            my_number_ok=None
            if number is None
            else by_tag[TEXT.TAG_DIGEST_MY_NUMBER] == hashlib.sha256(number).digest(),
            attributes_ok=by_tag[TEXT.TAG_DIGEST_ATTRIBUTES]
            == hashlib.sha256(four[start:]).digest(),
            signature_ok=signature_ok,
            key_id_ok=subject_id in info,
        )

    def verify(self, pin: str | bytes) -> None:
        self._verify(TEXT.EF_PIN, pin, "input-helper PIN")

    def change(self, new: str | bytes) -> None:
        self._change(TEXT.EF_PIN, new, "input-helper PIN")

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
