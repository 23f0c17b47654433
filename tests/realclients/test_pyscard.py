"""pyscard written the ordinary way, against the real emulator card (tests/vpcd/test_e2e.py
does the same against the echo card): the certificate it reads is the one OpenSC reads."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from smartcard.System import readers

from tests.realclients.conftest import READER, Served, run

pytestmark = [pytest.mark.vpcd, pytest.mark.opensc, pytest.mark.usefixtures("opensc")]


def _transmit(connection: object, apdu: str) -> bytes:
    data, sw1, sw2 = connection.transmit(list(bytes.fromhex(apdu)))  # type: ignore[attr-defined]
    assert (sw1, sw2) == (0x90, 0x00), f"{apdu}: {sw1:02X}{sw2:02X}"
    return bytes(data)


def test_pyscard_reads_the_auth_certificate_opensc_reads(served: Served) -> None:
    served.start()
    reader = next(r for r in readers() if str(r) == READER)
    connection = reader.createConnection()
    connection.connect()
    try:
        _transmit(connection, "00A4040C0AD392F000260100000001")
        _transmit(connection, "00A4020C02000A")
        head = _transmit(connection, "00B0000004")
        size = int.from_bytes(head[2:4], "big") + 4  # clients size certificates as LLLL + 4
        der = b""
        while len(der) < size:
            chunk = min(0xFF, size - len(der))
            der += _transmit(connection, f"00B0{len(der):04X}{chunk:02X}")
    finally:
        connection.disconnect()
    assert der == served.card().state.pki.auth_cert

    result = run("pkcs15-tool", "--reader", READER, "--read-certificate", "01")
    assert result.returncode == 0, result.stderr
    pem = x509.load_pem_x509_certificate(result.stdout.encode())
    assert pem.public_bytes(Encoding.DER) == der
