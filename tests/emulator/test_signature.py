"""COMPUTE DIGITAL SIGNATURE, verified with the certificate read from the card.

Reference: docs/card.md#compute-digital-signature.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from tests.conftest import Link
from tests.emulator.apdus import JPKI, OK, read_certificate, select_app, select_ef, sw_of, verify

MESSAGE = b"myna-hil: the quick brown fox"
SHA256 = hashlib.sha256(MESSAGE).digest()
SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414") + hashlib.sha1(MESSAGE).digest()
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420") + SHA256
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

#: key -> (certificate EF, PIN P2, PIN value, key EF)
KEYS = {"auth": (0x000A, 0x98, "1234", 0x0017), "sign": (0x0001, 0x9B, "ABC123", 0x001A)}


def _public_key(link: Link, key: str) -> rsa.RSAPublicKey:
    """The public key of *key*'s certificate as READ FROM THE CARD (verifies the PIN first)."""
    cert_ef, pin_p2, value, _ = KEYS[key]
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify(value, pin_p2)) == OK
    assert link.sw(select_ef(cert_ef)) == OK
    pub = x509.load_der_x509_certificate(read_certificate(link)).public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    return pub


def _sign(link: Link, p1: int, p2: int, data: bytes) -> bytes:
    r = link.send(f"802A{p1:02X}{p2:02X}{len(data):02X}{data.hex()}00")
    assert sw_of(r) == OK, f"{sw_of(r):04X}"
    assert len(r) == 256 + 2
    return r[:-2]


def _check(pub: rsa.RSAPublicKey, p1: int, data: bytes, sig: bytes) -> None:
    if p1 == 0x00:  # padded as given: the DigestInfo is what the signature recovers to
        assert pub.recover_data_from_signature(sig, padding.PKCS1v15(), None) == data
    elif p1 == 0x01:  # the card hashed; the bare hash is signed
        assert pub.recover_data_from_signature(sig, padding.PKCS1v15(), None) == SHA256
    elif p1 == 0x02:
        pub.verify(sig, data, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    elif p1 == 0x03:
        pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    elif p1 == 0x04:
        pub.verify(sig, data, PSS, utils.Prehashed(hashes.SHA256()))
    else:
        pub.verify(sig, data, PSS, hashes.SHA256())


CASES = [
    (0x00, SHA256_DIGEST_INFO),
    (0x00, SHA1_DIGEST_INFO),
    (0x01, MESSAGE),
    (0x02, SHA256),
    (0x03, MESSAGE),
    (0x04, SHA256),
    (0x05, MESSAGE),
]
CASE_IDS = ["00-sha256", "00-sha1", "01", "02", "03", "04-pss", "05-pss"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("addressing", ["select", "sfi"])
@pytest.mark.parametrize(("p1", "data"), CASES, ids=CASE_IDS)
def test_signature_verifies_with_the_card_certificate(
    link: Link, key: str, addressing: str, p1: int, data: bytes
) -> None:
    pub = _public_key(link, key)
    key_ef = KEYS[key][3]
    if addressing == "select":
        assert link.sw(select_ef(key_ef)) == OK
        p2 = 0x80
    else:
        p2 = 0x80 | key_ef
    sig = _sign(link, p1, p2, data)
    _check(pub, p1, data, sig)
    if p1 == 0x00 and data is SHA1_DIGEST_INFO:
        pub.verify(sig, MESSAGE, padding.PKCS1v15(), hashes.SHA1())


def test_signature_does_not_verify_with_the_other_key(link: Link) -> None:
    other = _public_key(link, "auth")
    assert link.sw(verify("ABC123", 0x9B)) == OK
    sig = _sign(link, 0x03, 0x9A, MESSAGE)
    with pytest.raises(InvalidSignature):
        other.verify(sig, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("key_p2", "other_pin_p2", "other"), [(0x97, 0x9B, "ABC123"), (0x9A, 0x98, "1234")]
)
def test_key_needs_its_own_pin(link: Link, key_p2: int, other_pin_p2: int, other: str) -> None:
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(f"802A00{key_p2:02X}20{SHA256.hex()}00") == 0x6982
    assert link.sw(verify(other, other_pin_p2)) == OK  # the *other* PIN of the AP
    assert link.sw(f"802A00{key_p2:02X}20{SHA256.hex()}00") == 0x6982


def test_one_verify_many_signatures(link: Link) -> None:
    pub = _public_key(link, "auth")
    sigs = {_sign(link, 0x03, 0x97, MESSAGE + bytes([i])) for i in range(5)}
    assert len(sigs) == 5
    for i, sig in enumerate(sorted(sigs)):  # each verifies for exactly its own message
        matches = 0
        for j in range(5):
            try:
                pub.verify(sig, MESSAGE + bytes([j]), padding.PKCS1v15(), hashes.SHA256())
                matches += 1
            except InvalidSignature:
                pass
        assert matches == 1, i


@pytest.mark.parametrize("p1", [0x06, 0x10, 0x80, 0xFF])
def test_bad_p1_is_6a86(link: Link, p1: int) -> None:
    _public_key(link, "auth")
    assert link.sw(f"802A{p1:02X}9720{SHA256.hex()}00") == 0x6A86


@pytest.mark.parametrize(
    ("p1", "size"),
    [(0x00, 246), (0x02, 31), (0x02, 33), (0x04, 20)],
)
def test_bad_data_length_is_6700(link: Link, p1: int, size: int) -> None:
    _public_key(link, "auth")
    assert link.sw(f"802A{p1:02X}97{size:02X}{'AB' * size}00") == 0x6700


def test_no_data_is_6700(link: Link) -> None:
    _public_key(link, "auth")
    assert link.sw("802A009700") == 0x6700


def test_signing_with_a_non_key_ef(link: Link) -> None:
    _public_key(link, "auth")
    assert link.sw(select_ef(0x000A)) == OK
    assert link.sw(f"802A008020{SHA256.hex()}00") == 0x6986


def test_signing_outside_jpki(link: Link) -> None:
    assert link.sw("00A4040C0AD3921000310001010408") == OK
    assert link.sw(f"802A009720{SHA256.hex()}00") in (0x6985, 0x6D00)
