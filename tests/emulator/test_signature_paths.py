"""The OpenSSL signing path gives the bytes the former raw computation gave, for every P1.

The reference below is the card's former signing code, kept here verbatim in substance:
EMSA-PKCS1-v1_5 type-1 padding of the block, then RSASP1 with Python's ``pow`` (CRT). PKCS#1
v1.5 is deterministic, so the two must agree byte for byte; PSS (P1 ``04``/``05``) is salted
and was OpenSSL's before as after, so it is checked by verification only.

Reference: docs/card.md#compute-digital-signature.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.apps import rsa_sign
from emulator.apps.rsa_sign import SigningKey
from emulator.errors import SwError
from emulator.grammar import SW
from emulator.grammar.ids import SHA256_DIGEST_INFO_PREFIX
from tests.support.cards import template_pki

#: DigestInfo prefixes (RFC 8017 §9.2 note 1), written out again here rather than imported.
PREFIXES = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
MESSAGE = b"myna-hil: the quick brown fox"


def reference_sign(key: SigningKey, mode: int, data: bytes) -> bytes:
    """The former implementation of P1 00..03: padding by hand, then ``pow`` with CRT."""
    if mode == 0x00:
        block = data
    elif mode == 0x01:
        block = hashlib.sha256(data).digest()
    elif mode == 0x02:
        block = SHA256_DIGEST_INFO_PREFIX + data
    elif mode == 0x03:
        block = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(data).digest()
    else:
        raise AssertionError(f"no raw reference for P1 {mode:02X}")
    numbers = key.key.private_numbers()
    p, q = numbers.p, numbers.q
    size = (numbers.public_numbers.n.bit_length() + 7) // 8
    em = b"\x00\x01" + b"\xff" * (size - len(block) - 3) + b"\x00" + block
    m = int.from_bytes(em, "big")
    s1 = pow(m, numbers.dmp1, p)
    s2 = pow(m, numbers.dmq1, q)
    h = (numbers.iqmp * (s1 - s2)) % p
    return (s2 + h * q).to_bytes(size, "big")


@pytest.fixture(scope="module", params=["auth", "sign"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    pki = template_pki()
    der = pki.auth_key if request.param == "auth" else pki.sign_key
    assert der is not None
    return SigningKey(der)


def _digest_info(name: str, message: bytes) -> bytes:
    return PREFIXES[name] + hashlib.new(name, message).digest()


CASES = [
    *((0x00, _digest_info(name, MESSAGE)) for name in PREFIXES),
    (0x00, b"\x01"),  # one byte, padded as given
    (0x00, bytes(range(245))),  # the longest block
    (0x00, PREFIXES["sha256"] + bytes(31)),  # a truncated DigestInfo: no OpenSSL form fits
    (0x00, bytes.fromhex("302f300b0609608648016503040201") + bytes(34)),  # no NULL params
    (0x01, MESSAGE),
    (0x01, b""),
    (0x02, hashlib.sha256(MESSAGE).digest()),
    (0x03, MESSAGE),
    (0x03, bytes(1000)),
]
IDS = [
    *(f"00-{name}" for name in PREFIXES),
    "00-one-byte",
    "00-245-bytes",
    "00-truncated-digestinfo",
    "00-digestinfo-without-null",
    "01",
    "01-empty",
    "02",
    "03",
    "03-long",
]


@pytest.mark.parametrize(("mode", "data"), CASES, ids=IDS)
def test_pkcs1_forms_are_byte_identical_to_the_raw_computation(
    key: SigningKey, mode: int, data: bytes
) -> None:
    assert key.sign(mode, data) == reference_sign(key, mode, data)


@pytest.mark.parametrize("name", list(PREFIXES))
def test_a_digest_info_goes_through_openssl(
    key: SigningKey, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DigestInfo forms must not fall back to ``pow``: the raw path is forbidden here."""

    def no_raw(payload: bytes) -> bytes:
        raise AssertionError("raw pow path used for a DigestInfo OpenSSL can sign")

    monkeypatch.setattr(key, "raw_pkcs1", no_raw)
    assert key.sign(0x00, _digest_info(name, MESSAGE))
    assert key.sign(0x02, hashlib.sha256(MESSAGE).digest())
    assert key.sign(0x03, MESSAGE)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from([0x00, 0x01, 0x02, 0x03]),
    digest_name=st.sampled_from([None, *PREFIXES]),
    data=st.binary(min_size=1, max_size=245),
)
def test_generated_inputs_agree_with_the_reference(
    mode: int, digest_name: str | None, data: bytes
) -> None:
    key = SigningKey(template_pki().auth_key)
    if mode == 0x00 and digest_name:
        data = _digest_info(digest_name, data)
    elif mode == 0x02:
        data = hashlib.sha256(data).digest()
    assert key.sign(mode, data) == reference_sign(key, mode, data)


@pytest.mark.parametrize(
    ("mode", "data"), [(0x04, hashlib.sha256(MESSAGE).digest()), (0x05, MESSAGE)]
)
def test_pss_verifies(key: SigningKey, mode: int, data: bytes) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    algorithm = utils.Prehashed(hashes.SHA256()) if mode == 0x04 else hashes.SHA256()
    key.key.public_key().verify(key.sign(mode, data), data, pss, algorithm)


@pytest.mark.parametrize(
    ("mode", "data", "sw"),
    [
        (0x00, b"", SW.WRONG_LENGTH),
        (0x00, bytes(rsa_sign.MAX_RAW_INPUT + 1), SW.WRONG_LENGTH),
        (0x02, bytes(31), SW.WRONG_LENGTH),
        (0x04, bytes(33), SW.WRONG_LENGTH),
        (0x06, MESSAGE, SW.INCORRECT_P1P2),
    ],
)
def test_refusals_are_unchanged(key: SigningKey, mode: int, data: bytes, sw: int) -> None:
    with pytest.raises(SwError) as exc:
        key.sign(mode, data)
    assert exc.value.sw == sw
