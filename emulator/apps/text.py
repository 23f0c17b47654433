"""The card-info input helper application (券面事項入力補助AP, "text AP").

Reference: docs/card.md#text-ap-files.
"""

from __future__ import annotations

from emulator.files import Application, BinaryEf, Ef, PinEf
from emulator.grammar import Tlv, build_tlvs
from emulator.grammar.ids import TEXT
from emulator.protocol import Application as App
from emulator.protocol import references_in
from emulator.state import CardState, Holder


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


def build(state: CardState) -> Application:
    h = state.holder
    files: list[Ef] = [
        BinaryEf(TEXT.EF_MY_NUMBER, my_number_ef(h.my_number), read_pin="helper"),
        BinaryEf(TEXT.EF_BASIC_FOUR, basic_four_ef(h), read_pin="helper"),
        *(PinEf.of(ref) for ref in references_in(App.TEXT)),
        PinEf(TEXT.EF_BLOCKED_PIN, None),
    ]
    return Application(App.TEXT, TEXT.AID, {ef.fid: ef for ef in files})
