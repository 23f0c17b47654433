"""harness.redact: PIN data never appears in a hex dump; everything else does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.redact import has_secret_data, is_secret_command, redact_command


@pytest.mark.parametrize(
    ("apdu", "expected"),
    [
        ("00200080043132333400", "00200080 04 <redacted 4 bytes> 00"),
        ("002000980431323334", "00200098 04 <redacted 4 bytes>"),
        ("00200080", "00200080"),  # empty VERIFY: a status query, nothing secret
        ("0020008000", "0020008000"),  # the same with Lc/Le 00
        ("002401800431323334", "00240180 04 <redacted 4 bytes>"),
        ("002C0218083132333435363738", "002C0218 08 <redacted 8 bytes>"),
        ("002C0318", "002C0318"),
        ("803200800439383736", "80320080 04 <redacted 4 bytes>"),
        ("0020008000000431323334", "00200080 000004 <redacted 4 bytes>"),  # extended Lc
        ("00200080000004313233340000", "00200080 000004 <redacted 4 bytes> 0000"),
        ("0020008009313233", "00200080 <redacted 4 bytes>"),  # Lc lies: redact it all
        ("00B0000000", "00B0000000"),
        # INS 32 is redacted whatever the class: a log must not depend on what a card accepts
        ("0032000004AABBCCDD", "00320000 04 <redacted 4 bytes>"),
        ("0021000004AABBCCDD", "00210000 04 <redacted 4 bytes>"),
        ("00B2000004AABBCCDD", "00B2000004AABBCCDD"),  # READ RECORD: not a secret
        ("00A4040C0AD392F000260100000001", "00A4040C0AD392F000260100000001"),
        ("0020", "0020"),  # shorter than a header
    ],
)
def test_redact_command(apdu: str, expected: str) -> None:
    assert redact_command(bytes.fromhex(apdu)) == expected


@pytest.mark.parametrize("cla", [0x00, 0x0C, 0x10, 0x80, 0x84])
@pytest.mark.parametrize("ins", [0x20, 0x21, 0x24, 0x2C, 0x32])
def test_iso_pin_commands_are_secret_in_any_class(cla: int, ins: int) -> None:
    assert is_secret_command(bytes([cla, ins, 0, 0x80, 1, 0x31]))


@pytest.mark.parametrize(
    ("apdu", "secret"),
    [
        ("0020008004 31323334", True),  # VERIFY with a PIN
        ("8032008004 31323334", True),  # JICSAP CHANGE KEY
        ("00200080", False),  # empty VERIFY: a status query
        ("0020008004", False),  # case 2: Le, no data
        ("00A4040C0AD392F000260100000001", False),  # SELECT: not a secret INS
    ],
)
def test_secret_data_needs_a_secret_ins_and_a_data_field(apdu: str, secret: bool) -> None:
    raw = bytes.fromhex(apdu.replace(" ", ""))
    assert has_secret_data(raw) is secret
    if secret:
        assert is_secret_command(raw)  # what has secret data is a secret command


_HEADERS = st.sampled_from(
    [b"\x00\x20\x00\x80", b"\x00\x24\x01\x80", b"\x00\x2c\x02\x18", b"\x80\x32\x00\x80"]
)


@given(
    header=_HEADERS,
    secret=st.binary(min_size=1, max_size=300),
    other=st.data(),
    le=st.sampled_from([b"", b"\x00"]),
)
def test_output_does_not_depend_on_the_secret(
    header: bytes, secret: bytes, other: st.DataObject, le: bytes
) -> None:
    """Two PINs of the same length give the same dump: no bit of the PIN leaks."""
    twin = other.draw(st.binary(min_size=len(secret), max_size=len(secret)))

    def build(data: bytes) -> bytes:
        lc = bytes([len(data)]) if len(data) < 256 else b"\x00" + len(data).to_bytes(2, "big")
        if not le:
            return header + lc + data
        return header + lc + data + (le if len(lc) == 1 else b"\x00\x00")

    assert redact_command(build(secret)) == redact_command(build(twin))
    assert f"<redacted {len(secret)} bytes>" in redact_command(build(secret))


@given(st.binary(max_size=40))
def test_never_raises_and_plain_commands_are_plain_hex(apdu: bytes) -> None:
    text = redact_command(apdu)
    if not is_secret_command(apdu):
        assert text == apdu.hex().upper()
    else:
        assert text.startswith(apdu[:4].hex().upper())
