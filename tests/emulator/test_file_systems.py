"""The whole file systems (issue 10, part 2): the text AP's integrity chain checked with
``cryptography``, the surface AP's records, JPKI's extra EFs and token info, the MF level,
secure-messaging classes, and a status word for every malformed form of the new commands."""

from __future__ import annotations

import copy
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.apps import cvc
from emulator.apps.images import JP2_SIGNATURE, PNG_SIGNATURE
from emulator.card import Card
from emulator.grammar import Tlv, parse_tlvs
from emulator.identity import card_serial, check_number_a, check_number_b
from emulator.state import CardState
from tests.conftest import Link
from tests.emulator.apdus import (
    COMMON,
    JPKI,
    JUKI,
    OK,
    SURFACE,
    TEXT,
    read,
    read_all,
    select_app,
    select_ef,
    sw_of,
    verify,
)
from tests.support.cards import fresh_card

ISD = "A0000001510000"


def _read_ef(link: Link, fid: int) -> bytes:
    assert link.sw(select_ef(fid)) == OK
    return read_all(link)


def _first_tlv(raw: bytes) -> Tlv:
    n = raw[2] if raw[2] < 0x80 else int.from_bytes(raw[3 : 3 + (raw[2] & 0x7F)], "big")
    return parse_tlvs(raw[: 3 + (raw[2] & 0x7F if raw[2] >= 0x80 else 0) + n])[0]


def _cvc(cert: bytes) -> tuple[bytes, bytes, rsa.RSAPublicKey, bytes, bytes]:
    """(issuer key id, subject key id, subject key, signed body, signature) of a 7F21."""
    outer = parse_tlvs(cert)[0]
    assert outer.tag == 0x7F21
    body, sig = parse_tlvs(outer.value)
    assert (body.tag, sig.tag) == (0x7F4E, 0x5F37)
    key = {t.tag: t.value for t in parse_tlvs(body.value[32:])}
    public = rsa.RSAPublicNumbers(
        int.from_bytes(key[0x91], "big"), int.from_bytes(key[0x90], "big")
    ).public_key()
    return body.value[:16], body.value[16:32], public, body.to_bytes(), sig.value


# --- text AP: the integrity chain ----------------------------------------------------------


@pytest.mark.parametrize("credential", ["pin", "check-numbers"])
def test_a_client_verifies_the_text_ap_integrity_chain(link: Link, credential: str) -> None:
    """Read 0001-0005 as a client does, check both digests and the signature with the key
    that 0004 certifies, and 0004 itself with the TEST issuer key [card layout, model keys]."""
    holder = link.card.state.holder
    assert link.sw(select_app(TEXT)) == OK
    if credential == "pin":
        assert link.sw(verify("2345", 0x91)) == OK
    else:
        assert link.sw(verify(check_number_a(holder), 0x94)) == OK
        assert link.sw(verify(check_number_b(holder), 0x95)) == OK
    number, four = _read_ef(link, 0x0001), _read_ef(link, 0x0002)
    record_raw, cert, info = (_read_ef(link, f) for f in (0x0003, 0x0004, 0x0005))
    assert (len(number), len(record_raw), len(cert), len(info)) == (17, 336, 568, 256)

    record = _first_tlv(record_raw)
    assert record.tag == 0xFF30
    items = parse_tlvs(record.value)
    assert [t.tag for t in items] == [0xDF31, 0xDF32, 0xDF33]
    assert items[0].value == hashlib.sha256(number).digest()  # the whole EF, filler included
    table = four.index(b"\xdf\x21\x08") + 3  # FF20 L or FF20 81 L, then DF21 08
    start = int.from_bytes(four[table : table + 2], "big")  # DF22 starts here
    assert four[start : start + 2] == b"\xdf\x22"
    assert items[1].value == hashlib.sha256(four[start:]).digest()

    issuer_id, subject_id, key, body, body_sig = _cvc(cert)
    key.verify(items[2].value, record.value[:70], padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        key.verify(
            items[2].value,
            record.value[:69] + bytes([record.value[69] ^ 1]),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    issuer = cvc.load_key(cvc.TEST_ISSUER_KEY_PEM).public_key()
    issuer.verify(body_sig, body, padding.PKCS1v15(), hashes.SHA256())
    assert issuer_id == cvc.key_id(issuer)
    assert subject_id in info  # 0005 names the key id [card]
    assert info.startswith(b"\xff\x50")


def test_the_integrity_record_follows_the_holder() -> None:
    one, two = fresh_card(holder_seed=1), fresh_card(holder_seed=2)
    a, b = (
        c.applications[bytes.fromhex(TEXT)].files[0x0003].content  # type: ignore[union-attr]
        for c in (one, two)
    )
    assert a != b and a[:5] == b[:5] == b"\xff\x30\x82\x01\x4b"


# --- surface AP ------------------------------------------------------------------------------


def test_surface_records_hold_the_card_face(link: Link) -> None:
    holder = link.card.state.holder
    assert link.sw(select_app(SURFACE)) == OK
    assert link.sw(verify(check_number_a(holder), 0x93)) == OK
    birth = {t.tag: t.value for t in parse_tlvs(_first_tlv(_read_ef(link, 0x0001)).value)}
    assert birth[0xDF11] == holder.birth_date.encode()
    face_raw = _read_ef(link, 0x0002)
    face = {t.tag: t.value for t in parse_tlvs(_first_tlv(face_raw).value)}
    assert face[0xDF22] == holder.birth_date.encode() and face[0xDF23] == holder.sex.encode()
    assert face[0xDF25].startswith(PNG_SIGNATURE) and face[0xDF26].startswith(PNG_SIGNATURE)
    assert face[0xDF27].startswith(JP2_SIGNATURE)
    assert face[0xDF29] == holder.expiry.encode()
    # every offset in DF21 points at the TLV after it, DF22 to DF2A in order
    table = face[0xDF21]
    tags = [face_raw[int.from_bytes(table[i : i + 2], "big") :][:2] for i in range(0, 18, 2)]
    assert tags == [bytes((0xDF, t)) for t in range(0x22, 0x2B)]
    # DF28 signs DF22..DF27 with the key certified in 0004
    _, _, key, _, _ = _cvc(_read_ef(link, 0x0004))
    signed = face_raw[int.from_bytes(table[0:2], "big") : int.from_bytes(table[12:14], "big")]
    key.verify(face[0xDF28], signed, padding.PKCS1v15(), hashes.SHA256())
    number = {t.tag: t.value for t in parse_tlvs(_first_tlv(_read_ef(link, 0x0005)).value)}
    assert number[0xDF41].startswith(PNG_SIGNATURE)
    info = {t.tag: t.value for t in parse_tlvs(_first_tlv(_read_ef(link, 0x0003)).value)}
    assert info[0xDF32] == cvc.key_id(key)


# --- JPKI -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fid", [0x0005, 0x0010, 0x0016, 0x0019, 0x001C, 0x001E])
def test_jpki_extra_efs_exist_with_unknown_content(link: Link, fid: int) -> None:
    """Selectable [card]; their content is not public: READ BINARY 6982, VERIFY 6986 [model]."""
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(select_ef(fid)) == OK
    assert link.sw(read(0, 0)) == 0x6982
    assert link.sw(f"00B0{0x80 | fid:02X}0000") == 0x6982
    assert link.sw(verify("1234")) == 0x6986
    assert link.sw(verify("1234", 0x80 | fid)) == 0x6986


def test_token_info_is_the_160_byte_layout(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    info = _read_ef(link, 0x0006)
    assert len(info) == 160
    assert info[:32] == b"JPKIAPICCTOKEN2".ljust(32)
    assert info[96:100] == b"\x00\x00\x04\x0d"  # flags 04 0D [card]
    assert info[116:124] == bytes.fromhex("0000001000000006")  # PIN lengths 16 / 6 [card]


# --- common AP -------------------------------------------------------------------------------


def test_common_ap_card_info_record(link: Link) -> None:
    """READ RECORD ``00 B2 01 04 00`` of EF 0001: ``01 1C`` + serial(15) municipality(5)
    expiry YYYYMMDD [card]; by SFI (P2 ``0C``) too."""
    state = link.card.state
    want = b"\x01\x1c" + (card_serial(state.pki.auth_cert) + "99999" + state.holder.expiry).encode()
    assert link.sw(select_app(COMMON)) == OK
    assert link.send("00B2010C00") == want + b"\x90\x00"  # SFI 1, record 1
    assert link.sw(select_ef(0x0001)) == OK
    assert link.send("00B2010400") == want + b"\x90\x00"
    assert link.sw("00B2010401") == 0x6C1E  # Ne short: 6Cxx with the record's size [model]
    assert link.sw("00B2020400") == 0x6A83  # no record 2
    assert link.sw("00B2000400") == 0x6A86  # record 0
    assert link.sw("00B2010500") == 0x6A81  # records P1..last: not provided [model]
    assert link.sw("00B2010700") == 0x6A86
    assert link.sw("00B201040100") == 0x6700  # a data field
    assert link.sw("00B0000000") == 0x6986  # not a transparent EF
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(select_ef(0x000A)) == OK
    assert link.sw("00B2010400") == 0x6981  # READ RECORD of a transparent EF
    assert link.sw("00B2013C00") == 0x6A82  # SFI 7: absent


def test_common_ap_internal_authenticate(link: Link) -> None:
    """``00 88 00 99 Lc challenge 00``: sha256WithRSAEncryption by EF 0019's key, no
    credential [card]; the key is a published TEST key [model]."""
    public = cvc.load_key(cvc.TEST_COMMON_AP_KEY_PEM).public_key()
    assert link.sw(select_app(COMMON)) == OK
    for n in (1, 16, 255):
        challenge = bytes(range(n))
        r = link.send(f"00880099{n:02X}{challenge.hex()}00")
        assert sw_of(r) == OK and len(r) == 258
        public.verify(r[:-2], challenge, padding.PKCS1v15(), hashes.SHA256())
    assert link.sw("0088009900") == 0x6700  # Lc 0: no data (case 2)
    assert link.sw(f"008800990110{'00' * 0}01") == 0x6C00  # Le 01: the answer is 256 bytes
    assert link.sw("008801990110") == 0x6A86
    assert link.sw("008800810110") == 0x6986  # EF 0001 is no key
    assert link.sw("008800850110") == 0x6A88  # no SFI 5 here
    assert link.sw(select_app(JPKI)) == OK  # the JPKI keys sign with 80 2A only
    assert link.sw("00880097011000") == 0x6982
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw("00880097011000") == 0x6985


def test_common_ap_pin_is_its_own_reference(link: Link) -> None:
    """The common AP's 001C is not the Juki PIN again [card]: separate counters, values."""
    assert link.sw(select_app(COMMON)) == OK
    assert link.sw(verify("0000", 0x9C)) == 0x63C2
    assert link.card.state.pins["juki"].tries_left == 3
    assert link.sw(select_app(JUKI)) == OK
    assert link.sw(verify(b"", 0x9C)) == 0x63C3
    assert link.sw(verify("3456", 0x9C)) == OK
    assert link.sw("8032009C041111".replace("041111", "04" + b"1111".hex())) == OK
    assert link.sw(select_app(COMMON)) == OK
    assert link.sw(verify("3456", 0x9C)) == OK  # unchanged by the Juki AP's change


# --- MF level and the issuer security domain --------------------------------------------------


def test_select_mf_without_data(link: Link) -> None:
    """``00 A4 00 00``: 6A86 right after reset, 9000 with no change inside an app [card]."""
    assert link.sw("00A40000") == 0x6A86
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw(verify("2345", 0x91)) == OK
    assert link.sw("00A40000") == OK
    assert link.sw("00B0810001") == OK  # still in the text AP, still verified


def test_issuer_security_domain_is_selectable(link: Link) -> None:
    assert link.sw(select_app(ISD)) == OK
    assert link.sw(select_ef(0x0001)) == 0x6A82
    assert link.sw("00B0810001") == 0x6A82


def test_mf_get_data_only_without_an_application(link: Link) -> None:
    card = link.card
    r = link.send("00CA005A00")
    assert sw_of(r) == OK and r[:-2] == card.mf_objects[0x005A]
    assert link.send("00CA004200") == b"99999\x90\x00"
    assert link.send("00CA5F2400") == card.state.holder.expiry[2:].encode() + b"\x90\x00"
    assert link.sw("00CA00F800") == 0x6700  # 1136 bytes: more than a short Le can ask
    r = link.send("00CA00F8000000")
    chain = r[:-2]
    assert sw_of(r) == OK and len(chain) == 2 * 568 and chain[:2] == b"\x7f\x21"
    assert link.sw("00CA005A01") == 0x6C00 | len(card.mf_objects[0x005A])
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("00CA005A00") == 0x6A88  # only with no application selected [card]
    assert sw_of(link.send("00CA5F5100")) == OK  # the ATR answers any time


@pytest.mark.parametrize("le", [1, 0x80, 0xFF, 256])
def test_get_challenge_le_1_to_256(link: Link, le: int) -> None:
    r = link.send(f"00840000{le & 0xFF:02X}")
    assert sw_of(r) == OK and len(r) == le + 2


# --- secure-messaging classes ----------------------------------------------------------------


@pytest.mark.parametrize("cla", ["08", "0C"])
def test_secure_messaging_class_outside_a_session(link: Link, cla: str) -> None:
    """6882 on SELECT, 69FC on READ BINARY and VERIFY [card]."""
    assert link.sw(f"{cla}A4040C0A{TEXT}") == 0x6882
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw(f"{cla}B0810000") == 0x69FC
    assert link.sw(f"{cla}20009104{b'2345'.hex()}") == 0x69FC
    assert link.sw(f"{cla}200091") == 0x69FC
    assert link.card.state.pins["helper"].tries_left == 3  # nothing spent


# --- malformed forms of every new command ----------------------------------------------------

MALFORMED = {
    "select-mf-with-le": ("00A4000000", 0x6700),
    "select-mf-1-byte": ("00A400000100", 0x6700),
    "get-data-with-data": ("00CA005A0100", 0x6700),
    "get-data-unknown-mf-tag": ("00CA0099", 0x6A88),
    "check-a-too-short": ("00A4040C0A" + TEXT, 0x9000),  # (sets up the next rows)
    "verify-check-a-11-digits": ("002000940B" + b"12345678901".hex(), 0x6700),
    "verify-check-b-15-digits": ("002000950F" + b"123456789012345".hex(), 0x6700),
    "verify-check-bad-p1": ("002001950E" + b"12345678901234".hex(), 0x6A86),
    "rrc-check-unauthenticated": ("002C0395", 0x6982),
    "read-integrity-locked": ("00B0830000", 0x6982),
    "read-integrity-with-data": ("00B083000100", 0x6700),
    "read-integrity-no-le": ("00B08300", 0x6700),
    "read-integrity-past-end": ("00A4020C020003", 0x9000),
    "read-surface-from-text-sfi": ("00B0860000", 0x6A82),
}


def test_malformed_forms_answer_their_status_words(link: Link) -> None:
    for name, (apdu, sw) in MALFORMED.items():
        assert link.sw(apdu) == sw, name


APPS = [None, JPKI, TEXT, SURFACE, ISD, COMMON]
INS = [0xA4, 0xB0, 0x20, 0xCA, 0x84, 0x2C, 0x24, 0x82, 0xB2, 0x88]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    app=st.sampled_from(APPS),
    cla=st.sampled_from([0x00, 0x08, 0x0C, 0x80]),
    ins=st.sampled_from(INS),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=20),
    le=st.one_of(st.none(), st.integers(1, 256)),
    verified=st.booleans(),
)
def test_new_commands_always_answer_a_status_word(
    app: str | None,
    cla: int,
    ins: int,
    p1: int,
    p2: int,
    data: bytes,
    le: int | None,
    verified: bool,
) -> None:
    card = _card()
    card.power_on()
    if app is not None:
        assert sw_of(card.transmit(bytes.fromhex(select_app(app)))) == OK
    if verified and app == TEXT:
        card.transmit(bytes.fromhex(verify(check_number_b(card.state.holder), 0x95)))
    apdu = bytes((cla, ins, p1, p2))
    if data:
        apdu += bytes((len(data),)) + data
    if le is not None:
        apdu += bytes((le & 0xFF,))
    r = card.transmit(apdu)
    assert len(r) >= 2
    sw = sw_of(r)
    assert sw != 0x6F00, apdu.hex()  # no handler bug
    assert sw >> 8 in (0x90, 0x63, 0x65, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E)
    assert card.transmit(bytes.fromhex(select_app(TEXT))) == b"\x90\x00"  # still serving


_CARD: list[tuple[Card, CardState]] = []


def _card() -> Card:
    """One card for the property test, re-issued in place between examples (fast)."""
    if not _CARD:
        card = fresh_card()
        _CARD.append((card, copy.deepcopy(card.state)))
    card, issued = _CARD[0]
    card.reissue_in_memory(copy.deepcopy(issued))
    return card
