"""OpenSC 0.23 against the virtual card: opensc-tool, pkcs15-tool, pkcs11-tool.

What OpenSC sends (seen in the emulator's traffic log) is summarised in README.md here.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from tests.realclients.conftest import READER, Served, myna_apdu, run

pytestmark = [pytest.mark.vpcd, pytest.mark.opensc, pytest.mark.usefixtures("opensc")]

SELECT_JPKI = "00A4040C0AD392F000260100000001"
SELECT_AUTH_PIN = "00A4020C020018"
SELECT_SIGN_PIN = "00A4020C02001B"
WRONG_AUTH_PIN = "0020008004" + b"9999".hex().upper()
WRONG_SIGN_PIN = "0020008006" + b"WRONG1".hex().upper()
AUTH_TOKEN = "JPKI (User Authentication PIN)"
SIGN_TOKEN = "JPKI (Digital Signature PIN)"
MESSAGE = b"myna-hil: signed through OpenSC's PKCS#11 module\n"
#: DER prefix of a SHA-256 DigestInfo (RFC 8017 9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MESSAGE_DIGEST_INFO = SHA256_DIGEST_INFO + hashlib.sha256(MESSAGE).digest()


def _tries_left(listing: str) -> dict[str, int]:
    """pkcs15-tool --list-pins output -> {PIN label: tries left}."""
    found: dict[str, int] = {}
    for block in listing.split("PIN [")[1:]:
        label = block.split("]", 1)[0]
        match = re.search(r"Tries left\s*:\s*(\d+)", block)
        assert match, block
        found[label] = int(match.group(1))
    return found


def _pem_certificate(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


# -- opensc-tool ----------------------------------------------------------------------------


def test_opensc_recognises_the_card_as_jpki(served: Served) -> None:
    served.start()
    name = run("opensc-tool", "--reader", READER, "--name")
    assert name.returncode == 0, name.stderr
    assert name.stdout.strip() == "jpki"
    atr = run("opensc-tool", "--reader", READER, "--atr")
    assert atr.stdout.split()[0].replace(":", "").upper() == served.card().atr.hex().upper()
    # Drivers earlier in OpenSC's list probe their own applications first: every probe must
    # be refused (a success would let that driver claim the card), then JPKI is selected.
    exchanges = served.exchanges()
    jpki = next(i for i, (command, _) in enumerate(exchanges) if command == SELECT_JPKI)
    assert exchanges[jpki][1] == "9000"
    probes = exchanges[:jpki]
    assert probes, "no other driver probed first"
    assert all(response[:2] in ("6A", "6D", "6E") for _, response in probes), probes


# -- pkcs15-tool ---------------------------------------------------------------------------


def test_pkcs15_lists_both_jpki_pins_with_fresh_counters(served: Served) -> None:
    served.start()
    listing = run("pkcs15-tool", "--reader", READER, "--list-pins")
    assert listing.returncode == 0, listing.stderr
    assert _tries_left(listing.stdout) == {
        "User Authentication PIN": 3,
        "Digital Signature PIN": 5,
    }
    # The counters are read by an empty VERIFY (case 1) after selecting each PIN EF; no try
    # is spent and nothing is verified.
    exchanges = served.exchanges()
    assert (SELECT_AUTH_PIN, "9000") in exchanges
    assert ("00200080", "63C3") in exchanges
    assert ("00200080", "63C5") in exchanges
    assert served.card().state.pins["auth"].tries_left == 3


def test_pkcs15_shows_counters_spent_before_serving(served: Served) -> None:
    # One wrong auth PIN and two wrong signing passwords, through the state file.
    assert myna_apdu(served.state, SELECT_JPKI, SELECT_AUTH_PIN, WRONG_AUTH_PIN)[-1] == "63C2"
    responses = myna_apdu(
        served.state, SELECT_JPKI, SELECT_SIGN_PIN, WRONG_SIGN_PIN, WRONG_SIGN_PIN
    )
    assert responses[-1] == "63C3"
    served.start()
    listing = run("pkcs15-tool", "--reader", READER, "--list-pins")
    assert listing.returncode == 0, listing.stderr
    assert _tries_left(listing.stdout) == {
        "User Authentication PIN": 2,
        "Digital Signature PIN": 3,
    }
    # Listing spent nothing.
    pins = served.card().state.pins
    assert (pins["auth"].tries_left, pins["sign"].tries_left) == (2, 3)


@pytest.mark.parametrize(
    ("cert_id", "field"),
    [("01", "auth_cert"), ("03", "auth_ca_cert"), ("04", "sign_ca_cert")],
    ids=["auth", "auth-ca", "sign-ca"],
)
def test_pkcs15_reads_the_free_certificates(served: Served, cert_id: str, field: str) -> None:
    served.start()
    result = run("pkcs15-tool", "--reader", READER, "--read-certificate", cert_id)
    assert result.returncode == 0, result.stderr
    expected = getattr(served.card().state.pki, field)
    assert _pem_certificate(result.stdout).public_bytes(Encoding.DER) == expected


def test_pkcs15_is_refused_the_signing_certificate_before_verification(served: Served) -> None:
    served.start()
    listing = run("pkcs15-tool", "--reader", READER, "--list-certificates")
    assert listing.returncode == 0, listing.stderr
    signing = listing.stdout.split("X.509 Certificate [Digital Signature Certificate]")[1]
    assert re.search(r"Object Flags\s*:\s*\[0x01\], private", signing.split("\n\n")[0])

    result = run("pkcs15-tool", "--reader", READER, "--read-certificate", "02")
    assert result.returncode != 0
    assert "BEGIN CERTIFICATE" not in result.stdout
    # OpenSC 0.23 reports the refusal as "EF offset too large" (its sc_read_binary turns a
    # failed first read into that); what matters is the card's 6982 to the first read.
    assert "Certificate read failed" in result.stderr
    exchanges = served.exchanges()
    sign_cert = [i for i, (command, _) in enumerate(exchanges) if command == "00A4020C020001"]
    assert sign_cert
    for i in sign_cert:
        assert exchanges[i + 1] == ("00B0000004", "6982")
    assert served.card().state.pins["sign"].tries_left == 5


# -- pkcs11-tool ---------------------------------------------------------------------------


def _pkcs11(module: str, *args: str) -> list[str]:
    return ["pkcs11-tool", "--module", module, *args]


def _sign(
    module: str, token: str, pin: str, key_id: str, mechanism: str, data: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``pkcs11-tool --login --pin PIN --sign``; the result and the signature file."""
    signature = data.with_suffix(".sig")
    result = run(
        *_pkcs11(module, "--token-label", token, "--login", "--pin", pin, "--sign"),
        *("--mechanism", mechanism, "--id", key_id),
        *("--input-file", str(data), "--output-file", str(signature)),
    )
    return result, signature


def _auth_certificate(module: str, tmp_path: Path) -> x509.Certificate:
    """The authentication certificate as OpenSC's PKCS#11 module reads it from the card."""
    out = tmp_path / "auth-cert.der"
    result = run(
        *_pkcs11(module, "--token-label", AUTH_TOKEN, "--read-object"),
        *("--type", "cert", "--id", "01", "--output-file", str(out)),
    )
    assert result.returncode == 0, result.stderr
    return x509.load_der_x509_certificate(out.read_bytes())


@pytest.mark.parametrize(
    ("mechanism", "payload"),
    [
        ("SHA256-RSA-PKCS", MESSAGE),
        ("RSA-PKCS", MESSAGE_DIGEST_INFO),  # the caller hashes and wraps
    ],
    ids=["sha256-rsa-pkcs", "rsa-pkcs-digestinfo"],
)
def test_pkcs11_signs_with_the_auth_key_after_login(
    served: Served, pkcs11_module: str, tmp_path: Path, mechanism: str, payload: bytes
) -> None:
    served.start()
    data = tmp_path / "data.bin"
    data.write_bytes(payload)
    result, signature = _sign(pkcs11_module, AUTH_TOKEN, "1234", "01", mechanism, data)
    assert result.returncode == 0, result.stderr
    certificate = _auth_certificate(pkcs11_module, tmp_path)
    assert certificate.public_bytes(Encoding.DER) == served.card().state.pki.auth_cert
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature.read_bytes(), MESSAGE, padding.PKCS1v15(), hashes.SHA256())

    # VERIFY of EF 0018 (data redacted in the log), then SELECT of the key EF 0017 and
    # COMPUTE DIGITAL SIGNATURE, case 4 short with the 51-byte DigestInfo and Le=00.
    exchanges = served.exchanges()
    assert ("00200080 04 <redacted 4 bytes>", "9000") in exchanges
    signing = [i for i, (command, _) in enumerate(exchanges) if command.startswith("802A0080")]
    assert len(signing) == 1
    command, response = exchanges[signing[0]]
    assert command == "802A008033" + MESSAGE_DIGEST_INFO.hex().upper() + "00"
    assert len(response) == 2 * (256 + 2) and response.endswith("9000")
    assert exchanges[signing[0] - 1] == ("00A4020C020017", "9000")
    assert served.card().state.pins["auth"].tries_left == 3


def test_pkcs11_signs_with_the_signing_key_after_the_password(
    served: Served, pkcs11_module: str, tmp_path: Path
) -> None:
    served.start()
    data = tmp_path / "data.bin"
    data.write_bytes(MESSAGE)
    result, signature = _sign(pkcs11_module, SIGN_TOKEN, "ABC123", "02", "SHA256-RSA-PKCS", data)
    assert result.returncode == 0, result.stderr
    certificate = x509.load_der_x509_certificate(served.card().state.pki.sign_cert or b"")
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature.read_bytes(), MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    assert ("00A4020C02001A", "9000") in served.exchanges()


def test_pkcs11_wrong_pin_spends_exactly_one_try(
    served: Served, pkcs11_module: str, tmp_path: Path
) -> None:
    served.start()
    data = tmp_path / "data.bin"
    data.write_bytes(MESSAGE)
    result, _ = _sign(pkcs11_module, AUTH_TOKEN, "9999", "01", "SHA256-RSA-PKCS", data)
    assert result.returncode != 0
    assert "CKR_PIN_INCORRECT" in result.stdout + result.stderr
    assert served.card().state.pins["auth"].tries_left == 2
    verifies = [e for e in served.exchanges() if e[0].startswith("00200080 ")]
    assert verifies == [("00200080 04 <redacted 4 bytes>", "63C2")]
    assert not any(command.startswith("802A") for command, _ in served.exchanges())
    # pkcs15-tool, a new process, sees the spent try.
    listing = run("pkcs15-tool", "--reader", READER, "--list-pins")
    assert _tries_left(listing.stdout)["User Authentication PIN"] == 2


def test_pins_never_reach_the_emulator_log(
    served: Served, pkcs11_module: str, tmp_path: Path
) -> None:
    served.start()
    for pin in ("9999", "1234"):
        run(*_pkcs11(pkcs11_module, "--token-label", AUTH_TOKEN, "--login", "--pin", pin, "-O"))
    assert served.stop() == 0
    commands = [text for direction, text in served.traffic() if direction == ">"]
    verifies = [c for c in commands if c.startswith("00200080 ")]
    assert verifies == ["00200080 04 <redacted 4 bytes>"] * 2
    # (Responses are not searched: 4 given bytes turn up in certificates by chance.)
    for pin in (b"9999", b"1234"):
        assert not [c for c in commands if pin.hex().upper() in c.upper()]
