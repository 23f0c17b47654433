"""The card-info input helper application (券面事項入力補助AP, "text AP").

Reference: docs/card.md#text-ap-files and #check-numbers.
"""

from __future__ import annotations

import functools
import hashlib

import emulator.apps.cvc as cvc
from emulator.apps.by_holder import cached_by_holder
from emulator.files import Application, BinaryEf, Ef, PinEf
from emulator.grammar import Tlv, build_tlvs
from emulator.grammar.ids import TEXT
from emulator.protocol import Application as App
from emulator.protocol import Pin, references_in
from emulator.state import CardState, Holder

#: EF 0005 is read as 256 bytes [card]; [model] the AP info TLV, then FF filler.
AP_INFO_SIZE = 256
AP_IDENTIFIER = b"myna-hil TEST text AP"  # [model]
FILLER = b"\xff" * 16  # EF 0008 [card]


def my_number_ef(number: str) -> bytes:
    """``FF 10 0C`` + 12 ASCII digits, then ``FF FF`` filler: 17 bytes, as clients read [card]."""
    return Tlv(TEXT.TAG_MY_NUMBER, number.encode("ascii")).to_bytes() + b"\xff\xff"


def basic_four_ef(holder: Holder) -> bytes:
    """``FF20`` holding an offset table (``DF21``) and name, address, birth date, sex.

    The offsets are from the start of the file to each of the four TLVs, as 2-byte values.
    """
    items = [
        Tlv(TEXT.TAG_NAME, holder.name.encode("utf-8")),
        Tlv(TEXT.TAG_ADDRESS, holder.address.encode("utf-8")),
        Tlv(TEXT.TAG_BIRTH, holder.birth_date.encode("ascii")),
        Tlv(TEXT.TAG_SEX, holder.sex.encode("ascii")),
    ]
    encoded = [t.to_bytes() for t in items]
    body_len = 2 + 1 + 8 + sum(map(len, encoded))
    header_len = len(Tlv(TEXT.TAG_BASIC_FOUR, bytes(body_len)).to_bytes()) - body_len
    offsets, pos = [], header_len + 11
    for e in encoded:
        offsets.append(pos.to_bytes(2, "big"))
        pos += len(e)
    table = Tlv(TEXT.TAG_OFFSETS, b"".join(offsets))
    return Tlv(TEXT.TAG_BASIC_FOUR, build_tlvs([table]) + b"".join(encoded)).to_bytes()


def attributes_part(basic_four: bytes) -> bytes:
    """What ``DF32`` digests: EF 0002 from the ``DF22`` TLV to the end (the offset table
    skipped) [card]. The first offset in ``DF21`` says where ``DF22`` starts."""
    start = int.from_bytes(basic_four[basic_four.index(b"\xdf\x21\x08") + 3 :][:2], "big")
    return basic_four[start:]


def signature_ef(my_number: bytes, basic_four: bytes) -> bytes:
    """EF 0003 [card]: ``FF30 { DF31 SHA-256(EF 0001), DF32 SHA-256(attributes),
    DF33 signature }``; the signature is over the two digest TLVs (70 bytes) by the key that
    EF 0004 certifies; 336 bytes in all."""
    digests = (
        Tlv(TEXT.TAG_DIGEST_MY_NUMBER, hashlib.sha256(my_number).digest()).to_bytes()
        + Tlv(
            TEXT.TAG_DIGEST_ATTRIBUTES, hashlib.sha256(attributes_part(basic_four)).digest()
        ).to_bytes()
    )
    signature = cvc.sign(cvc.load_key(cvc.TEST_TEXT_AP_KEY_PEM), digests)
    return Tlv(
        TEXT.TAG_SIGNATURE, digests + Tlv(TEXT.TAG_SIGNATURE_VALUE, signature).to_bytes()
    ).to_bytes()


@cached_by_holder
def holder_efs(holder: Holder) -> tuple[bytes, bytes, bytes]:
    """EFs ``0001``, ``0002`` and ``0003`` of *holder* (built once per holder)."""
    number, four = my_number_ef(holder.my_number), basic_four_ef(holder)
    return number, four, signature_ef(number, four)


@functools.cache
def ap_info_ef() -> bytes:
    """EF 0005 AP basic info: identifier and key id [card]; tags and filler [model]."""
    key = cvc.load_key(cvc.TEST_TEXT_AP_KEY_PEM).public_key()
    info = Tlv(
        TEXT.TAG_AP_INFO,
        Tlv(0xDF51, AP_IDENTIFIER).to_bytes() + Tlv(0xDF52, cvc.key_id(key)).to_bytes(),
    ).to_bytes()
    return info.ljust(AP_INFO_SIZE, b"\xff")


def build(state: CardState) -> Application:
    number, four, signature = holder_efs(state.holder)
    # Either check number opens the integrity record; A the My Number, B the attributes
    # [card] (they are only in the file model when the card holds them).
    has_checks = Pin.TEXT_A in state.pins
    a = (Pin.TEXT_A,) if has_checks else ()
    b = (Pin.TEXT_B,) if has_checks else ()
    files: list[Ef] = [
        BinaryEf.opened_by(TEXT.EF_MY_NUMBER, number, Pin.HELPER, *a),
        BinaryEf.opened_by(TEXT.EF_BASIC_FOUR, four, Pin.HELPER, *b),
        BinaryEf.opened_by(TEXT.EF_SIGNATURE, signature, Pin.HELPER, *a, *b),
        BinaryEf(TEXT.EF_CERT, cvc.certificate(cvc.TEST_TEXT_AP_KEY_PEM)),
        BinaryEf(TEXT.EF_AP_INFO, ap_info_ef()),
        BinaryEf(TEXT.EF_FILLER, FILLER),
        *(PinEf.of(ref) for ref in references_in(App.TEXT) if ref.pin in state.pins),
        PinEf(TEXT.EF_BLOCKED_PIN, None),
    ]
    return Application(App.TEXT, TEXT.AID, {ef.fid: ef for ef in files})
