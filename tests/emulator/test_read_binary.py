"""READ BINARY and Ne the way clients written against real cards read (docs/card.md#read-binary,
#ne-and-le): every readable file, every reading habit, compared with the expected content."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import card as card_module
from emulator.apps import surface, text
from emulator.apps.jpki import TOKEN_INFO
from emulator.apps.text import basic_four_ef, my_number_ef
from emulator.card import Card
from emulator.identity import check_number_a, check_number_b
from emulator.state import CardState
from tests.conftest import Link
from tests.emulator.apdus import JPKI, OK, SURFACE, TEXT, select_app, select_ef, sw_of, verify
from tests.support.cards import fresh_card

Value = str | Callable[[CardState], str]
A: Value = lambda s: check_number_a(s.holder)  # noqa: E731
B: Value = lambda s: check_number_b(s.holder)  # noqa: E731

#: (application, FID, VERIFY to send first as (value, P2) or None, expected content)
FILES: dict[str, tuple[str, int, tuple[Value, int] | None, Callable[[CardState], bytes]]] = {
    "jpki-0001-sign-cert": (JPKI, 0x0001, ("ABC123", 0x9B), lambda s: s.pki.sign_cert or b""),
    "jpki-0002-sign-ca": (JPKI, 0x0002, None, lambda s: s.pki.sign_ca_cert),
    "jpki-0006-token-info": (JPKI, 0x0006, None, lambda s: TOKEN_INFO),
    "jpki-0008-availability": (JPKI, 0x0008, None, lambda s: bytes.fromhex("8F8F00")),
    "jpki-000A-auth-cert": (JPKI, 0x000A, None, lambda s: s.pki.auth_cert),
    "jpki-000B-auth-ca": (JPKI, 0x000B, None, lambda s: s.pki.auth_ca_cert),
    "text-0001-my-number": (
        TEXT,
        0x0001,
        ("2345", 0x91),
        lambda s: my_number_ef(s.holder.my_number),
    ),
    "text-0002-basic-four": (TEXT, 0x0002, ("2345", 0x91), lambda s: basic_four_ef(s.holder)),
    # the files real cards have beyond those (docs/card.md#jpki-files, #text-ap-files, #surface)
    "jpki-0009": (JPKI, 0x0009, None, lambda s: b"\xff" * 16),
    "text-0001-by-check-a": (TEXT, 0x0001, (A, 0x94), lambda s: my_number_ef(s.holder.my_number)),
    "text-0002-by-check-b": (TEXT, 0x0002, (B, 0x95), lambda s: basic_four_ef(s.holder)),
    "text-0003-integrity": (
        TEXT,
        0x0003,
        (B, 0x95),
        lambda s: text.signature_ef(my_number_ef(s.holder.my_number), basic_four_ef(s.holder)),
    ),
    "text-0004-certificate": (TEXT, 0x0004, None, lambda s: _cert(text.cvc.TEST_TEXT_AP_KEY_PEM)),
    "text-0005-ap-info": (TEXT, 0x0005, None, lambda s: text.ap_info_ef()),
    "text-0008": (TEXT, 0x0008, None, lambda s: b"\xff" * 16),
    "surface-0001-birth": (SURFACE, 0x0001, (B, 0x92), lambda s: surface.birth_ef(s.holder)),
    "surface-0002-face": (SURFACE, 0x0002, (B, 0x92), lambda s: surface.entries_ef(s.holder)),
    "surface-0003-ap-info": (SURFACE, 0x0003, None, lambda s: surface.ap_info_ef()),
    "surface-0004-certificate": (
        SURFACE,
        0x0004,
        None,
        lambda s: _cert(surface.cvc.TEST_SURFACE_AP_KEY_PEM),
    ),
    "surface-0005-my-number": (
        SURFACE,
        0x0005,
        (A, 0x93),
        lambda s: surface.my_number_ef(s.holder),
    ),
    "surface-0006": (SURFACE, 0x0006, (A, 0x93), lambda s: b"\xff" * 16),
}


def _cert(pem: str) -> bytes:
    return text.cvc.certificate(pem)


def _open(link: Link, name: str, *, select: bool = True) -> bytes:
    """Select the application (and the EF), VERIFY if needed; the content to expect."""
    aid, fid, pin, expected = FILES[name]
    assert link.sw(select_app(aid)) == OK
    if pin is not None:
        value = pin[0] if isinstance(pin[0], str) else pin[0](link.card.state)
        assert link.sw(verify(value, pin[1])) == OK
    if select:
        assert link.sw(select_ef(fid)) == OK
    return expected(link.card.state)


def _rb(offset: int, le: int, *, extended: bool = False) -> str:
    """READ BINARY of the current EF; *le* 256 / 65536 are sent as 00 / 0000."""
    if extended:
        return f"00B0{offset:04X}00{le & 0xFFFF:04X}"
    return f"00B0{offset:04X}{le & 0xFF:02X}"


def _chunked(link: Link, ne: int, *, extended: bool = False, first: str | None = None) -> bytes:
    """Read in Ne-byte chunks until an answer runs short or the card says 6B00."""
    out = b""
    while True:
        r = link.send(
            first if first is not None and not out else _rb(len(out), ne, extended=extended)
        )
        sw = sw_of(r)
        if sw == 0x6B00 and out:
            return out  # the previous read ended exactly at the end
        assert sw == OK, f"{sw:04X} at offset {len(out)}"
        data = r[:-2]
        assert 0 < len(data) <= ne
        out += data
        if len(data) < ne:
            return out


def _size_from_head(head: bytes) -> int:
    """The object's size from its first 4 bytes: ``30 82 LLLL`` (DER) or a BER-TLV with a
    two-byte tag (``FF20 L`` / ``FF20 81 L``); else the 4 bytes are all there is to know."""
    if head[:2] == b"\x30\x82":
        return int.from_bytes(head[2:4], "big") + 4
    if head[0] & 0x1F == 0x1F:
        if head[2] < 0x80:
            return 3 + head[2]
        if head[2] == 0x81:
            return 4 + head[3]
        if head[2] == 0x82 and len(head) == 5:
            return 5 + int.from_bytes(head[3:5], "big")
    raise AssertionError(f"no length in {head.hex()}")


def read_le_ff(link: Link, name: str) -> bytes:
    _open(link, name)
    return _chunked(link, 0xFF)


def read_le_00(link: Link, name: str) -> bytes:
    _open(link, name)
    return _chunked(link, 256)


def read_head_then_exact(link: Link, name: str) -> bytes:
    expected = _open(link, name)
    if len(expected) <= 4:  # EF 0008: clients read its 3 bytes outright
        r = link.send(_rb(0, 3))
        assert sw_of(r) == OK
        return r[:-2]
    if expected[:2] not in (b"\x30\x82", b"\xff\x20"):
        size = len(expected)  # token info, My Number (17 with filler): a known size [client]
    else:
        n = 5 if expected[:3] == b"\xff\x20\x82" else 4  # a 2-byte tag with a 2-byte length
        head = link.send(_rb(0, n))
        assert sw_of(head) == OK and len(head) == n + 2
        size = _size_from_head(head[:n])
    r = link.send(_rb(0, size, extended=size > 256))
    assert sw_of(r) == OK, f"{sw_of(r):04X}"
    return r[:-2]


def read_extended_0000(link: Link, name: str) -> bytes:
    _open(link, name)
    r = link.send(_rb(0, 65536, extended=True))  # 00 B0 00 00 00 00 00: Ne = 65536
    assert sw_of(r) == OK
    return r[:-2]


def read_sfi(link: Link, name: str) -> bytes:
    """No SELECT EF: ``00 B0 (80|SFI) 00 00``, then the current-EF form it left behind."""
    _open(link, name, select=False)
    fid = FILES[name][1]
    return _chunked(link, 256, first=f"00B0{0x80 | fid:02X}0000")


def read_sfi_extended(link: Link, name: str) -> bytes:
    """``00 B0 (80|SFI) 00 00 HH LL`` with the whole size, as jpki clients read certificates."""
    expected = _open(link, name, select=False)
    fid = FILES[name][1]
    r = link.send(f"00B0{0x80 | fid:02X}0000{len(expected):04X}")
    assert sw_of(r) == OK
    return r[:-2]


READERS = [
    read_le_ff,
    read_le_00,
    read_head_then_exact,
    read_extended_0000,
    read_sfi,
    read_sfi_extended,
]


@pytest.mark.parametrize("reader", READERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", FILES)
def test_clients_read_every_file(
    link: Link, name: str, reader: Callable[[Link, str], bytes]
) -> None:
    expected = FILES[name][3](link.card.state)
    assert expected
    assert reader(link, name) == expected


@pytest.mark.parametrize("name", FILES)
def test_exact_end_answers_6b00(link: Link, name: str) -> None:
    """Offset == size: 6B00, whatever Le [card] (JICSAP 6.4.1(4)); one short: one byte."""
    expected = _open(link, name)
    size = len(expected)
    for le in (1, 0xFF, 256):
        assert link.send(_rb(size, le)) == b"\x6b\x00"
    assert link.send(_rb(size, 65536, extended=True)) == b"\x6b\x00"
    assert link.send(_rb(size - 1, 256)) == expected[-1:] + b"\x90\x00"
    if size <= 0xFF:  # the SFI form addresses offsets 0..255
        sfi = 0x80 | FILES[name][1]
        assert link.send(f"00B0{sfi:02X}{size:02X}00") == b"\x6b\x00"
        assert link.send(f"00B0{sfi:02X}{size - 1:02X}00") == expected[-1:] + b"\x90\x00"


def test_read_past_the_end_is_9000_never_6282(link: Link) -> None:
    cert = _open(link, "jpki-000A-auth-cert")
    for offset in (len(cert) - 1, len(cert) - 100, len(cert) - 255):
        r = link.send(_rb(offset, 256))
        assert r == cert[offset:] + b"\x90\x00"


# --- Ne smaller than the answer -------------------------------------------------------------


@pytest.mark.parametrize("le", [1, 2, 3, 17, 0x7F, 0xFF, 256])
def test_read_binary_never_exceeds_le(link: Link, le: int) -> None:
    cert = _open(link, "jpki-000A-auth-cert")
    r = link.send(_rb(0x10, le))
    assert r == cert[0x10 : 0x10 + le] + b"\x90\x00"


def test_get_data_honours_le(link: Link) -> None:
    """The contact ATR without 3B is 18 bytes; less Ne: 6C12 and no data [model]."""
    atr = link.card.atr[1:]
    assert len(atr) == 0x12
    assert link.send("00CA5F5100") == atr + b"\x90\x00"
    assert link.send("00CA5F5112") == atr + b"\x90\x00"
    assert link.send("00CA5F5120") == atr + b"\x90\x00"
    assert link.send("00CA5F510000FF") == atr + b"\x90\x00"
    assert link.send("00CA5F5111") == b"\x6c\x12"
    assert link.send("00CA5F5101") == b"\x6c\x12"
    assert link.send("00CA5F51") == b"\x6c\x12"  # no Le: Ne = 0
    assert link.send("00CA010101") == b"\x6a\x88"  # an unknown tag is that first


@pytest.mark.parametrize("le", [1, 4, 8, 16, 0xFF, 256])
def test_get_challenge_answers_le_bytes(link: Link, le: int) -> None:
    """Le 1..256 [card]; the challenge is what EXTERNAL AUTHENTICATE then expects."""
    from emulator.commands import issuer_cryptogram

    assert link.sw(select_app(JPKI)) == OK
    r = link.send(f"00840000{le & 0xFF:02X}")
    assert sw_of(r) == OK and len(r) - 2 == le
    assert link.sw(f"0082000010{issuer_cryptogram(r[:-2]).hex()}") == OK


def test_get_challenge_extended_le(link: Link) -> None:
    r = link.send("00840000000020")
    assert sw_of(r) == OK and len(r) == 0x20 + 2
    assert link.sw("00840000000101") == 0x6700  # 257: more than 256 [model]


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32)


@pytest.mark.parametrize("tail", ["01", "80", "FF", "", "0000FF"])
def test_signature_with_too_small_ne_is_6c00(link: Link, tail: str) -> None:
    """A 256-byte signature with Ne < 256 (or no Le): 6C00 and no data [model]; nothing is
    spent, and the same command with Le 00 signs."""
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    data = SHA256_DIGEST_INFO
    extended = len(tail) == 6
    head = f"802A0097{len(data):02X}" if not extended else f"802A009700{len(data):04X}"
    r = link.send(head + data.hex() + (tail[2:] if extended else tail))
    assert r == b"\x6c\x00"
    r = link.send(f"802A0097{len(data):02X}{data.hex()}00")
    assert sw_of(r) == OK and len(r) == 258
    r = link.send(f"802A009700{len(data):04X}{data.hex()}0100")
    assert sw_of(r) == OK and len(r) == 258


def test_signature_errors_come_before_ne(link: Link) -> None:
    """Without the PIN the answer is 6982 whatever Ne; a bad data length 6700."""
    assert link.sw(select_app(JPKI)) == OK
    sign = f"802A0097{len(SHA256_DIGEST_INFO):02X}{SHA256_DIGEST_INFO.hex()}01"
    assert link.sw(sign) == 0x6982
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw(f"802A029705{'AB' * 5}01") == 0x6700


# --- the dispatcher's guard -----------------------------------------------------------------


def test_the_card_never_answers_more_than_ne(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that answers more than Ne bytes is a bug: the card answers 6F00."""
    card = fresh_card()
    card.power_on()
    monkeypatch.setitem(card_module._ISO_COMMANDS, 0xCA, lambda c, a: b"\x01" * 5 + b"\x90\x00")
    assert card.transmit(bytes.fromhex("00CA000005")) == b"\x01" * 5 + b"\x90\x00"
    assert card.transmit(bytes.fromhex("00CA000004")) == b"\x6f\x00"
    assert card.transmit(bytes.fromhex("00CA0000")) == b"\x6f\x00"


@functools.cache
def _shared_card() -> Card:
    return fresh_card()


@settings(max_examples=300, deadline=None)
@given(
    p1=st.integers(0, 0xFF),
    p2=st.integers(0, 0xFF),
    le=st.integers(1, 65536),
    extended=st.booleans(),
    fid=st.sampled_from([0x0002, 0x0006, 0x0008, 0x000A, 0x000B]),
)
def test_read_binary_answer_length(p1: int, p2: int, le: int, extended: bool, fid: int) -> None:
    """Any READ BINARY answers min(Ne, bytes left) with 9000, 6B00 at or past the end."""
    card = _shared_card()
    card.power_on()
    extended = extended or le > 256
    tail = b"\x00" + (le & 0xFFFF).to_bytes(2, "big") if extended else bytes((le & 0xFF,))
    for cmd in (bytes.fromhex(select_app(JPKI)), bytes.fromhex(select_ef(fid))):
        assert card.transmit(cmd) == b"\x90\x00"
    content = card.session.ef.content  # type: ignore[union-attr]
    r = card.transmit(bytes((0, 0xB0, p1, p2)) + tail)
    if p1 & 0x80:
        sfi = p1 & 0x1F
        if p1 & 0x60:
            assert r == b"\x6a\x86"
            return
        ef = card.session.app.by_sfi(sfi)  # type: ignore[union-attr]
        if ef is None or not hasattr(ef, "content") or getattr(ef, "read_pins", None):
            assert r in (b"\x6a\x82", b"\x69\x86", b"\x69\x82")  # absent, a PIN or key, locked
            return
        content, offset = ef.content, p2
    else:
        offset = p1 << 8 | p2
    if offset >= len(content):
        assert r == b"\x6b\x00"
    else:
        assert r == content[offset : offset + le] + b"\x90\x00"
