"""A small reader app as a vendor writes it: pyscard only, nothing from myna-hil.

It finds a reader, reads the JPKI user-authentication certificate (free to read) and logs in
with the authentication PIN, checking the counter first so that a blocked PIN is reported
without spending anything. The tests run this module unchanged against the in-process
reader (``myna_pyscard_reader``) and against ``myna-emu``'s card behind pcscd + vpcd.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartcard.System import readers

JPKI_AID = bytes.fromhex("D392F000260100000001")
EF_AUTH_CERT = bytes.fromhex("000A")
EF_AUTH_PIN = bytes.fromhex("0018")


class AppError(Exception):
    """What the app shows when the card does not answer as expected."""


@dataclass(frozen=True)
class Login:
    reader: str
    atr: bytes
    certificate: bytes
    tries_before: int
    verified: bool
    tries_after: int
    message: str


def find_reader(name_part: str | None = None):  # type: ignore[no-untyped-def]
    """The first reader whose name contains *name_part* (the first reader when None)."""
    for reader in readers():
        if name_part is None or name_part in str(reader):
            return reader
    raise AppError(f"no card reader found ({name_part or 'any'})")


def _send(connection, apdu: bytes) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    data, sw1, sw2 = connection.transmit(list(apdu))
    return bytes(data), sw1 << 8 | sw2


def _ok(connection, apdu: bytes) -> bytes:  # type: ignore[no-untyped-def]
    data, sw = _send(connection, apdu)
    if sw != 0x9000:
        raise AppError(f"card answered {sw:04X} to {apdu[:4].hex().upper()}")
    return data


def _select_ef(connection, fid: bytes) -> None:  # type: ignore[no-untyped-def]
    _ok(connection, bytes([0x00, 0xA4, 0x02, 0x0C, len(fid)]) + fid)


def _tries(sw: int) -> int:
    if sw == 0x9000:
        return -1  # already verified in this session: the card does not say
    if sw == 0x6984 or sw & 0xFFF0 == 0x63C0:
        return 0 if sw == 0x6984 else sw & 0x0F
    raise AppError(f"unexpected answer {sw:04X} to the PIN status query")


def read_certificate(connection) -> bytes:  # type: ignore[no-untyped-def]
    _select_ef(connection, EF_AUTH_CERT)
    head = _ok(connection, bytes.fromhex("00B0000004"))
    size = int.from_bytes(head[2:4], "big") + 4  # DER: 30 82 LLLL
    der = b""
    while len(der) < size:
        chunk = min(0xFF, size - len(der))
        der += _ok(connection, bytes([0x00, 0xB0, len(der) >> 8, len(der) & 0xFF, chunk]))
    return der


def login(pin: str, reader_name: str | None = None) -> Login:
    """Read the certificate and log in with *pin*; never sends a PIN to a blocked counter."""
    reader = find_reader(reader_name)
    connection = reader.createConnection()
    connection.connect()
    try:
        atr = bytes(connection.getATR())
        _ok(connection, bytes([0x00, 0xA4, 0x04, 0x0C, len(JPKI_AID)]) + JPKI_AID)
        certificate = read_certificate(connection)
        _select_ef(connection, EF_AUTH_PIN)
        _data, sw = _send(connection, bytes.fromhex("00200080"))
        before = _tries(sw)
        if before == 0:
            return Login(str(reader), atr, certificate, 0, False, 0, "card locked")
        value = pin.encode("ascii")
        _data, sw = _send(connection, bytes([0x00, 0x20, 0x00, 0x80, len(value)]) + value)
        if sw == 0x9000:  # the counter is back at its maximum, which the card does not say
            return Login(str(reader), atr, certificate, before, True, -1, "logged in")
        after = _tries(sw)
        message = "card locked" if after == 0 else f"wrong PIN, {after} tries left"
        return Login(str(reader), atr, certificate, before, False, after, message)
    finally:
        connection.disconnect()
