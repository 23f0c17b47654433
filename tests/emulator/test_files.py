"""The files of docs/card.md#files with their access and contents, and #read-binary."""

from __future__ import annotations

import pytest
from cryptography import x509

from emulator.grammar import TokenInfo, parse_tlvs
from emulator.identity import is_valid_my_number
from tests.conftest import Link
from tests.emulator.apdus import (
    JPKI,
    OK,
    SURFACE,
    TEXT,
    open_ef,
    read,
    read_all,
    read_certificate,
    select_app,
    select_ef,
    sw_of,
    verify,
)

FREE_JPKI = [0x0002, 0x000A, 0x000B, 0x0006, 0x0008]


@pytest.mark.parametrize("fid", FREE_JPKI, ids=lambda f: f"{f:04X}")
def test_free_jpki_files_read_without_a_pin(link: Link, fid: int) -> None:
    open_ef(link, JPKI, fid)
    assert read_all(link)


@pytest.mark.parametrize(
    ("aid", "fid", "pin_p2", "value", "wrong_pin_p2", "wrong_value"),
    [
        (JPKI, 0x0001, 0x9B, "ABC123", 0x98, "1234"),  # signing certificate
        (TEXT, 0x0001, 0x91, "2345", None, None),  # My Number
        (TEXT, 0x0002, 0x91, "2345", None, None),  # basic four attributes
    ],
    ids=["jpki-0001", "text-0001", "text-0002"],
)
def test_protected_files_need_their_pin(
    link: Link,
    aid: str,
    fid: int,
    pin_p2: int,
    value: str,
    wrong_pin_p2: int | None,
    wrong_value: str | None,
) -> None:
    open_ef(link, aid, fid)
    assert link.sw(read(0, 4)) == 0x6982
    if wrong_pin_p2 is not None:  # another PIN of the same AP does not open it
        assert link.sw(verify(wrong_value or "", wrong_pin_p2)) == OK
        assert link.sw(read(0, 4)) == 0x6982
    assert link.sw(verify("0000" if len(value) == 4 else "XXXXXX", pin_p2)) != OK
    assert link.sw(read(0, 4)) == 0x6982
    assert link.sw(verify(value, pin_p2)) == OK
    assert link.sw(read(0, 4)) == OK


@pytest.mark.parametrize(
    ("aid", "fid"),
    [
        (JPKI, 0x0017),
        (JPKI, 0x001A),
        (JPKI, 0x0018),
        (JPKI, 0x001B),
        (TEXT, 0x0011),
        (TEXT, 0x0012),
    ],
    ids=["jpki-0017", "jpki-001A", "jpki-0018", "jpki-001B", "text-0011", "text-0012"],
)
def test_key_and_pin_files_are_never_readable(link: Link, aid: str, fid: int) -> None:
    open_ef(link, aid, fid)
    assert link.sw(verify("1234", 0x98) if aid == JPKI else verify("2345", 0x91)) == OK
    assert link.sw(select_ef(fid)) == OK
    assert link.sw(read(0, 4)) == 0x6986  # [model] no key or PIN material leaves the card


@pytest.mark.parametrize("fid", [0x0001, 0x0002, 0x0005])
def test_surface_files_stay_closed(link: Link, fid: int) -> None:
    """[model] the check values that open the card-surface AP are not modelled."""
    open_ef(link, SURFACE, fid)
    assert link.sw(read(0, 1)) == 0x6982


# --- contents -------------------------------------------------------------------------------


def test_certificate_availability_both_present(link: Link) -> None:
    open_ef(link, JPKI, 0x0008)
    assert link.send(read(0, 3)).hex().upper() == "8F8F009000"


def test_token_info_label(link: Link) -> None:
    open_ef(link, JPKI, 0x0006)
    raw = read_all(link)
    assert raw[:32] == b"JPKIAPICCTOKEN2".ljust(32, b" ")
    assert TokenInfo.from_bytes(raw).label == "JPKIAPICCTOKEN2"


@pytest.mark.parametrize(
    ("fid", "pin_p2", "field"),
    [
        (0x000A, None, "auth_cert"),
        (0x000B, None, "auth_ca_cert"),
        (0x0002, None, "sign_ca_cert"),
        (0x0001, 0x9B, "sign_cert"),
    ],
)
def test_certificates_are_sized_llll_plus_4(
    link: Link, fid: int, pin_p2: int | None, field: str
) -> None:
    assert link.sw(select_app(JPKI)) == OK
    if pin_p2:
        assert link.sw(verify("ABC123", pin_p2)) == OK
    assert link.sw(select_ef(fid)) == OK
    der = read_certificate(link)
    assert der == getattr(link.card.state.pki, field)
    cert = x509.load_der_x509_certificate(der)
    assert "TEST" in cert.issuer.rfc4514_string()
    assert link.sw(read(len(der), 1)) == 0x6B00  # nothing after LLLL + 4


def test_my_number_ef(link: Link) -> None:
    open_ef(link, TEXT, 0x0001)
    assert link.sw(verify("2345", 0x91)) == OK
    r = link.send(read(0, 17))  # clients read 17
    assert sw_of(r) == OK
    ef = r[:-2]
    assert len(ef) == 17 and ef[:3] == b"\xff\x10\x0c" and ef[-2:] == b"\xff\xff"
    number = ef[3:15].decode("ascii")
    assert is_valid_my_number(number)
    assert number == link.card.state.holder.my_number
    assert link.send(read(0, 18)) == ef + b"\x90\x00"  # past the end: what is left [card]


def test_basic_four_offsets_point_at_the_attribute_tlvs(link: Link) -> None:
    open_ef(link, TEXT, 0x0002)
    assert link.sw(verify("2345", 0x91)) == OK
    ef = read_all(link)
    (outer,) = parse_tlvs(ef)
    assert outer.tag == 0xFF20
    assert ef[:2] == b"\xff\x20"
    table = parse_tlvs(outer.value)
    assert [t.tag for t in table] == [0xDF21, 0xDF22, 0xDF23, 0xDF24, 0xDF25]
    offsets = [int.from_bytes(table[0].value[i : i + 2], "big") for i in range(0, 8, 2)]
    holder = link.card.state.holder
    expected = [
        (0xDF22, holder.name.encode()),
        (0xDF23, holder.address.encode()),
        (0xDF24, holder.birth_date.encode()),
        (0xDF25, holder.sex.encode()),
    ]
    for offset, (tag, value) in zip(offsets, expected, strict=True):
        assert ef[offset : offset + 2] == tag.to_bytes(2, "big")
        found = parse_tlvs(ef[offset : offset + 3 + ef[offset + 2]])
        assert found[0].value == value
    assert len(table[3].value) == 8 and table[3].value.isdigit()
    assert table[4].value in (b"1", b"2", b"9")


# --- READ BINARY forms ----------------------------------------------------------------------


@pytest.fixture
def auth_cert(link: Link) -> bytes:
    return link.card.state.pki.auth_cert


def test_read_binary_offset_form(link: Link, auth_cert: bytes) -> None:
    open_ef(link, JPKI, 0x000A)
    r = link.send(read(0x0123, 16))
    assert r == auth_cert[0x123 : 0x123 + 16] + b"\x90\x00"


def test_read_binary_le_00_is_256(link: Link, auth_cert: bytes) -> None:
    open_ef(link, JPKI, 0x000A)
    r = link.send("00B0000000")
    assert r == auth_cert[:256] + b"\x90\x00"


def test_read_binary_sfi_form_needs_no_select(link: Link, auth_cert: bytes) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.send("00B08A0004") == auth_cert[:4] + b"\x90\x00"
    assert link.send("00B08A1008") == auth_cert[0x10:0x18] + b"\x90\x00"
    # the SFI reference made the EF current
    assert link.send(read(4, 4)) == auth_cert[4:8] + b"\x90\x00"


def test_read_binary_sfi_with_extended_le(link: Link, auth_cert: bytes) -> None:
    assert link.sw(select_app(JPKI)) == OK
    size = len(auth_cert) - 4
    r = link.send(f"00B08A0400{size:04X}")  # 00 B0 8A 04 00 HH LL, as real clients send
    assert r == auth_cert[4:] + b"\x90\x00"


def test_read_binary_extended_le_0000_reads_the_rest(link: Link, auth_cert: bytes) -> None:
    open_ef(link, JPKI, 0x000A)
    r = link.send("00B00000000000")  # Le 65536
    assert sw_of(r) == OK and r[:-2] == auth_cert


def test_read_past_the_end(link: Link, auth_cert: bytes) -> None:
    open_ef(link, JPKI, 0x000A)
    end = len(auth_cert)
    assert link.send(read(end - 3, 16)) == auth_cert[-3:] + b"\x90\x00"  # [card] what is left
    assert link.sw(read(end, 1)) == 0x6B00  # [card] offset at the end
    assert link.sw(read(0x7FFF, 1)) == 0x6B00


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00B08A00", 0x6700),
        ("00B08A00010004", 0x6700),
        ("00B0E00004", 0x6A86),
        ("00B09F0004", 0x6A82),
        ("00B0980004", 0x6986),
    ],
    ids=["no-le", "with-data", "bad-sfi-bits", "unknown-sfi", "pin-ef-by-sfi"],
)
def test_read_binary_errors(link: Link, apdu: str, sw: int) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(apdu) == sw


def test_read_binary_without_current_ef(link: Link) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(read(0, 4)) == 0x6986
