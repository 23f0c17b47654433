"""The card-surface application (券面事項確認AP, "visual AP").

Reference: docs/card.md#surface-ap-files. Check number B opens the card-face entries, check
number A those and the rendered My Number [card]. The birth-date reference (EF ``0011``, which
opens only ``0001`` on a real card) is not modelled: [model] either check number opens
``0001``. The images are generated placeholders ([model], :mod:`emulator.apps.images`).
"""

from __future__ import annotations

import functools

import emulator.apps.cvc as cvc
import emulator.apps.images as images
from emulator.apps.by_holder import cached_by_holder
from emulator.files import NOBODY, Application, BinaryEf, Ef, PinEf
from emulator.grammar import Tlv
from emulator.grammar.ids import SURFACE
from emulator.identity import TEST_MUNICIPALITY
from emulator.protocol import Application as App
from emulator.protocol import Pin, references_in
from emulator.state import CardState, Holder

FILLER = b"\xff" * 16  # EF 0006
AP_IDENTIFIER = b"myna-hil TEST surface AP"  # [model]


def _signed(
    tag: int,
    items: list[Tlv],
    *,
    unsigned: list[Tlv] | None = None,
    offsets: int | None = None,
    sig_tag: int,
) -> bytes:
    """``tag { [offset table] items... signature [unsigned...] }``; the signature (TEST
    surface-AP key, PKCS#1 v1.5 SHA-256 [model]) covers the encoded items."""
    key = cvc.load_key(cvc.TEST_SURFACE_AP_KEY_PEM)
    signed = b"".join(t.to_bytes() for t in items)
    tail = [Tlv(sig_tag, cvc.sign(key, signed)), *(unsigned or [])]
    encoded = [t.to_bytes() for t in items] + [t.to_bytes() for t in tail]
    if offsets is None:
        return Tlv(tag, b"".join(encoded)).to_bytes()
    # [model] a DF21-style table of 2-byte offsets from the file start, one per TLV after it
    table_len = 3 + 2 * len(encoded)
    body_len = table_len + sum(map(len, encoded))
    pos = len(Tlv(tag, bytes(body_len)).to_bytes()) - body_len + table_len
    table = bytearray()
    for e in encoded:
        table += pos.to_bytes(2, "big")
        pos += len(e)
    return Tlv(tag, Tlv(offsets, bytes(table)).to_bytes() + b"".join(encoded)).to_bytes()


def _public_key() -> bytes:
    return cvc.public_key_tlvs(cvc.load_key(cvc.TEST_SURFACE_AP_KEY_PEM).public_key())


def birth_ef(holder: Holder) -> bytes:
    """EF 0001, the age record: ``FF10 { DF11 YYYYMMDD, DF12 key, DF13 signature }`` [card]."""
    return _signed(
        SURFACE.TAG_BIRTH,
        [Tlv(0xDF11, holder.birth_date.encode("ascii")), Tlv(0xDF12, _public_key())],
        sig_tag=0xDF13,
    )


def entries_ef(holder: Holder) -> bytes:
    """EF 0002, the card face [card]: ``FF20 { DF21 offsets, DF22 birth, DF23 sex, DF24 key,
    DF25 name image, DF26 address image, DF27 photo (JPEG 2000), DF28 signature, DF29 expiry,
    DF2A security-code image }``; DF29 and DF2A are not signed."""
    items = [
        Tlv(0xDF22, holder.birth_date.encode("ascii")),
        Tlv(0xDF23, holder.sex.encode("ascii")),
        Tlv(0xDF24, _public_key()),
        Tlv(0xDF25, images.png(64, 16)),
        Tlv(0xDF26, images.png(96, 16)),
        Tlv(0xDF27, images.jp2(16, 20)),
    ]
    unsigned = [Tlv(0xDF29, holder.expiry.encode("ascii")), Tlv(0xDF2A, images.png(16, 8))]
    return _signed(SURFACE.TAG_ENTRIES, items, unsigned=unsigned, offsets=0xDF21, sig_tag=0xDF28)


@functools.cache
def ap_info_ef() -> bytes:
    """EF 0003, AP basic data (free) [card]: identifier, key id, version, municipality code,
    an opaque block; the values are [model]."""
    key_id = cvc.key_id(cvc.load_key(cvc.TEST_SURFACE_AP_KEY_PEM).public_key())
    return Tlv(
        SURFACE.TAG_AP_INFO,
        b"".join(
            t.to_bytes()
            for t in (
                Tlv(0xDF31, AP_IDENTIFIER),
                Tlv(0xDF32, key_id),
                Tlv(0xDF33, b"\x01\x00"),
                Tlv(0xDF34, TEST_MUNICIPALITY),
                Tlv(0xDF35, bytes(16)),
            )
        ),
    ).to_bytes()


def my_number_ef(holder: Holder) -> bytes:
    """EF 0005, the rendered My Number: ``FF40 { DF41 image, DF42 key, DF43 signature }``."""
    return _signed(
        SURFACE.TAG_MY_NUMBER,
        [Tlv(0xDF41, images.png(96, 12)), Tlv(0xDF42, _public_key())],
        sig_tag=0xDF43,
    )


@cached_by_holder
def holder_efs(holder: Holder) -> tuple[bytes, bytes, bytes]:
    """EFs ``0001``, ``0002`` and ``0005`` of *holder* (built once per holder)."""
    return birth_ef(holder), entries_ef(holder), my_number_ef(holder)


def build(state: CardState) -> Application:
    birth, entries, my_number = holder_efs(state.holder)
    if Pin.SURFACE_A in state.pins:
        a: tuple[str, ...] = (Pin.SURFACE_A,)
        either: tuple[str, ...] = (Pin.SURFACE_A, Pin.SURFACE_B)
    else:  # a card issued before check numbers were modelled: nothing opens them
        a = either = (NOBODY,)
    files: list[Ef] = [
        BinaryEf.opened_by(SURFACE.EF_BIRTH, birth, *either),
        BinaryEf.opened_by(SURFACE.EF_ENTRIES, entries, *either),
        BinaryEf(SURFACE.EF_AP_INFO, ap_info_ef()),
        BinaryEf(SURFACE.EF_CERT, cvc.certificate(cvc.TEST_SURFACE_AP_KEY_PEM)),
        BinaryEf.opened_by(SURFACE.EF_MY_NUMBER, my_number, *a),
        BinaryEf.opened_by(SURFACE.EF_FILLER, FILLER, *either),
        *(PinEf.of(ref) for ref in references_in(App.SURFACE) if ref.pin in state.pins),
    ]
    return Application(App.SURFACE, SURFACE.AID, {ef.fid: ef for ef in files})
