"""The card-info input helper application (券面事項入力補助AP, "text AP"), card.md §3."""

from __future__ import annotations

from emulator.files import Application, BinaryEf, Ef, PinEf
from emulator.grammar import Tlv, build_tlvs
from emulator.state import CardState, Holder

AID = bytes.fromhex("D3921000310001010408")

EF_MY_NUMBER = 0x0001
EF_BASIC_FOUR = 0x0002
EF_PIN = 0x0011
EF_BLOCKED_PIN = 0x0012  # blocked on every card examined [card]

TAG_MY_NUMBER = 0xFF10
TAG_BASIC_FOUR = 0xFF20
TAG_OFFSETS = 0xDF21
TAG_NAME = 0xDF22
TAG_ADDRESS = 0xDF23
TAG_BIRTH = 0xDF24
TAG_SEX = 0xDF25


def my_number_ef(number: str) -> bytes:
    """``FF 10 0C`` + 12 ASCII digits, then ``FF FF`` filler: 17 bytes, as clients read [card]."""
    return Tlv(TAG_MY_NUMBER, number.encode("ascii")).to_bytes() + b"\xff\xff"


def basic_four_ef(holder: Holder) -> bytes:
    """``FF20`` holding an offset table (``DF21``) and name, address, birth date, sex.

    The offsets are from the start of the file to each of the four TLVs, as 2-byte values.
    """
    items = [
        Tlv(TAG_NAME, holder.name.encode("utf-8")),
        Tlv(TAG_ADDRESS, holder.address.encode("utf-8")),
        Tlv(TAG_BIRTH, holder.birth_date.encode("ascii")),
        Tlv(TAG_SEX, holder.sex.encode("ascii")),
    ]
    encoded = [t.to_bytes() for t in items]
    body_len = 2 + 1 + 8 + sum(map(len, encoded))
    header_len = len(Tlv(TAG_BASIC_FOUR, bytes(body_len)).to_bytes()) - body_len
    offsets, pos = [], header_len + 11
    for e in encoded:
        offsets.append(pos.to_bytes(2, "big"))
        pos += len(e)
    return Tlv(TAG_BASIC_FOUR, build_tlvs([Tlv(TAG_OFFSETS, b"".join(offsets))]) + b"".join(
        encoded
    )).to_bytes()


def build(state: CardState) -> Application:
    h = state.holder
    files: list[Ef] = [
        BinaryEf(EF_MY_NUMBER, my_number_ef(h.my_number), read_pin="helper"),
        BinaryEf(EF_BASIC_FOUR, basic_four_ef(h), read_pin="helper"),
        PinEf(EF_PIN, "helper"),
        PinEf(EF_BLOCKED_PIN, None),
    ]
    return Application("text", AID, {ef.fid: ef for ef in files})
