"""Generated test identities: a fictitious card holder and a TEST JPKI PKI.

Nothing here is real: names come from a short list of sample names, the My Number is random
with a valid check digit, and every certificate chains to a CA whose name says TEST.
Key generation (RSA-2048, four keys) happens once per card state, never per APDU.
"""

from __future__ import annotations

import datetime as dt
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulator.state import Holder, Pki

_SURNAMES = ["山田", "佐藤", "鈴木", "高橋", "田中", "渡辺"]
_GIVEN = [("太郎", "1"), ("花子", "2"), ("一郎", "1"), ("桜", "2"), ("健", "1"), ("美咲", "2")]
_ADDRESSES = [
    "東京都千代田区霞が関二丁目1番2号",
    "大阪府大阪市北区中之島一丁目3番20号",
    "北海道札幌市中央区北1条西2丁目",
    "福岡県福岡市中央区天神一丁目8番1号",
]


def my_number_check_digit(first11: str) -> int:
    """Check digit of an individual number (番号法施行令 §8): weights 2..7, 2..6 from the right."""
    if len(first11) != 11 or not first11.isdigit():
        raise ValueError("need the first 11 digits")
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_my_number(number: str) -> bool:
    return (
        len(number) == 12
        and number.isdigit()
        and my_number_check_digit(number[:11]) == int(number[11])
    )


def generate_holder(rng: random.Random | None = None) -> Holder:
    rng = rng or random.Random()
    given, sex = rng.choice(_GIVEN)
    first11 = "".join(rng.choice("0123456789") for _ in range(11))
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 55))
    return Holder(
        name=f"{rng.choice(_SURNAMES)} {given}",
        address=rng.choice(_ADDRESSES),
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        my_number=first11 + str(my_number_check_digit(first11)),
    )


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _der_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "myna-hil TEST JPKI (not J-LIS)"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _certificate(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    key_usage: x509.KeyUsage,
    serial: int | None = None,
) -> bytes:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * (10 if ca else 5)))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
    )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=sign and not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def generate_pki(*, with_signing: bool = True) -> Pki:
    """Two TEST CAs and the card's key pairs with their certificates.

    The signing certificate carries no personal data in this emulator ([model]: the real one
    holds name, address, birth date and sex).
    """
    auth_ca = _rsa_key()
    sign_ca = _rsa_key()
    auth_ca_name = _name("myna-hil TEST JPKI User Authentication CA")
    sign_ca_name = _name("myna-hil TEST JPKI Digital Signature CA")
    auth_ca_cert = _certificate(
        auth_ca_name, auth_ca.public_key(), auth_ca_name, auth_ca,
        ca=True, key_usage=_usage(sign=False, ca=True),
    )
    sign_ca_cert = _certificate(
        sign_ca_name, sign_ca.public_key(), sign_ca_name, sign_ca,
        ca=True, key_usage=_usage(sign=True, ca=True),
    )
    auth = _rsa_key()
    auth_cert = _certificate(
        _name("myna-hil TEST card user authentication"), auth.public_key(),
        auth_ca_name, auth_ca, ca=False, key_usage=_usage(sign=False, ca=False),
    )
    pki = Pki(
        auth_ca_key=_der_key(auth_ca),
        auth_ca_cert=auth_ca_cert,
        sign_ca_key=_der_key(sign_ca),
        sign_ca_cert=sign_ca_cert,
        auth_key=_der_key(auth),
        auth_cert=auth_cert,
    )
    if with_signing:
        issue_signing(pki)
    return pki


def issue_signing(pki: Pki) -> None:
    """Generate the signing key and certificate (a counter re-issuing them, or at init)."""
    sign_ca = serialization.load_der_private_key(pki.sign_ca_key, None)
    assert isinstance(sign_ca, rsa.RSAPrivateKey)
    sign_ca_cert = x509.load_der_x509_certificate(pki.sign_ca_cert)
    key = _rsa_key()
    pki.sign_key = _der_key(key)
    pki.sign_cert = _certificate(
        _name("myna-hil TEST card digital signature"), key.public_key(),
        sign_ca_cert.subject, sign_ca, ca=False, key_usage=_usage(sign=True, ca=False),
    )


def revoke_signing(pki: Pki) -> None:
    pki.sign_key = None
    pki.sign_cert = None


def certificate_serial(cert_der: bytes) -> str:
    """Hex serial number of a certificate: the card identity the HIL interlocks use."""
    return format(x509.load_der_x509_certificate(cert_der).serial_number, "X")
