"""Generated test identities: a fictitious card holder and a TEST JPKI PKI.

Nothing here is real: names come from a short list of sample names, addresses put made-up
town names in real cities, the My Number is random with a valid check digit, and every
certificate chains to a CA whose name says TEST.
The RSA keys are the published TEST keys of :mod:`emulator.published_keys` unless fresh ones
are asked for (RSA-2048 generation, four keys, ~0.3 s); never per APDU.
"""

from __future__ import annotations

import datetime as dt
import os
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulator.published_keys import AUTH, AUTH_CA, SIGN, SIGN_CA, published_key
from emulator.state import Holder, Pki

#: Family names, some with the variant kanji real cards carry (髙 U+9AD9, 﨑 U+FA11: the
#: latter is one of the twelve compatibility-block ideographs NFC keeps as they are).
_SURNAMES = ["山田", "佐藤", "鈴木", "髙橋", "田中", "渡辺", "山﨑", "伊藤"]
_GIVEN = [
    ("太郎", "1"),
    ("花子", "2"),
    ("一郎", "1"),
    ("桜", "2"),
    ("健", "1"),
    ("美咲", "2"),
    ("翔太", "1"),
    ("陽菜", "2"),
]
#: Real prefectures and cities; the town names are made up (見本 "sample", 試験 "test"...),
#: so no generated address is anyone's.
_CITIES = [
    "東京都千代田区",
    "大阪府大阪市北区",
    "北海道札幌市中央区",
    "福岡県福岡市中央区",
    "愛知県名古屋市中区",
    "宮城県仙台市青葉区",
]
_TOWNS = ["見本町", "試験台", "架空丘", "例示原", "仮名野"]
_BUILDINGS = ["見本ハイツ", "試験コーポ", "架空マンション"]
#: The dash between block numbers: U+2212 MINUS SIGN (JIS X 0208 mapping) or U+FF0D
#: FULLWIDTH HYPHEN-MINUS (Windows code page 932 mapping); both occur in Japanese text.
_DASHES = ["\u2212", "\uff0d"]
IDEOGRAPHIC_SPACE = "\u3000"
#: [model] The issuing municipality of every virtual card: a 5-digit local-government code
#: (全国地方公共団体コード, as real cards write it [card]) that no municipality has: the first two
#: digits are the prefecture, 01-47.
TEST_MUNICIPALITY = b"99999"
CARD_SERIAL_DIGITS = 15
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def full_width(number: int) -> str:
    """*number* in full-width digits (U+FF10..U+FF19), as addresses on cards are written."""
    return str(number).translate(_FULL_WIDTH)


def _address(rng: random.Random) -> str:
    """A fictitious address: full-width block digits, sometimes a building after U+3000."""
    town = rng.choice(_CITIES) + rng.choice(_TOWNS)
    chome, ban, go = rng.randint(1, 5), rng.randint(1, 30), rng.randint(1, 20)
    form = rng.randrange(3)
    if form == 0:
        dash = rng.choice(_DASHES)
        address = town + dash.join(full_width(n) for n in (chome, ban, go))
    elif form == 1:
        address = f"{town}{full_width(chome)}丁目{full_width(ban)}番{full_width(go)}号"
    else:
        address = f"{town}{full_width(ban)}番地{full_width(go)}"
    if rng.random() < 0.4:
        room = rng.randint(1, 9) * 100 + rng.randint(1, 12)
        address += f"{IDEOGRAPHIC_SPACE}{rng.choice(_BUILDINGS)}{full_width(room)}号室"
    return address


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


def generate_holder(rng: random.Random | None = None, *, seed: int | None = None) -> Holder:
    """A fictitious holder written as cards write it: family and given name separated by an
    ideographic space (U+3000), the address with full-width digits [card]. The same *seed*
    (or the same *rng* state) gives the same holder; neither: a random one."""
    if rng is None:
        rng = random.Random(seed)
    given, sex = rng.choice(_GIVEN)
    first11 = "".join(rng.choice("0123456789") for _ in range(11))
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 55))
    name = f"{rng.choice(_SURNAMES)}{IDEOGRAPHIC_SPACE}{given}"
    address = _address(rng)
    # Drawn last, so a seed gives the same name, address and number as before they existed.
    # An adult's card expires on the 10th birthday after issue [guide]; issued 2016-2025.
    issued = rng.randrange(2016, 2026)
    return Holder(
        name=name,
        address=address,
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        my_number=first11 + str(my_number_check_digit(first11)),
        expiry=f"{issued + 10}{birth.strftime('%m%d')}",
        security_code=f"{rng.randrange(10000):04d}",
    )


#: Japanese eras by first day (the Gregorian dates they start on).
_ERAS = (
    (dt.date(2019, 5, 1), "R"),
    (dt.date(1989, 1, 8), "H"),
    (dt.date(1926, 12, 25), "S"),
    (dt.date(1912, 7, 30), "T"),
    (dt.date(1868, 10, 23), "M"),
)


def era_date(yyyymmdd: str) -> str:
    """*yyyymmdd* as YYMMDD with the year of its Japanese era (1985-03-15 -> ``600315``,
    Showa 60), as check number B and the surface AP's birth-date reference write it [card]."""
    day = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    for start, _ in _ERAS:
        if day >= start:
            return f"{day.year - start.year + 1:02d}{day.strftime('%m%d')}"
    raise ValueError("dates before 1868-10-23 have no era year here")


def check_number_a(holder: Holder) -> str:
    """照合番号A: the 12-digit My Number [card]."""
    return holder.my_number


def check_number_b(holder: Holder) -> str:
    """照合番号B: birth YYMMDD (era year) + expiry year YYYY + security code: 14 digits [card]."""
    return era_date(holder.birth_date) + holder.expiry[:4] + holder.security_code


#: Set (to anything but ``0`` or empty) to give every new card fresh RSA keys instead of the
#: published TEST keys: the environment form of ``--fresh-keys``.
FRESH_KEYS_ENV = "MYNA_HIL_FRESH_KEYS"


def fresh_keys_wanted() -> bool:
    """Whether :data:`FRESH_KEYS_ENV` asks for freshly generated keys."""
    return os.environ.get(FRESH_KEYS_ENV, "") not in ("", "0")


def _rsa_key(role: str, fresh: bool) -> rsa.RSAPrivateKey:
    """The published TEST key of *role*, or with *fresh* a newly generated one (~0.1 s)."""
    if fresh:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return published_key(role)


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


#: [model] The CRL distribution point each end-entity certificate names. Real JPKI
#: certificates carry one (the lists are published over HTTP or LDAP to registered verifiers:
#: docs/relying-party.md); ours point at a reserved ``.invalid`` host, so a
#: relying party in this project is configured with the URL of the harness's TEST revocation
#: service (``harness/revocation``), as a registered verifier is configured by contract.
CRL_DISTRIBUTION_POINTS = {
    "auth": "http://crl.jpki-test.invalid/auth.crl",
    "sign": "http://crl.jpki-test.invalid/sign.crl",
}
#: [model] Certificates end at the last second of their expiry day, Japan time (UTC+9).
_JST = dt.timezone(dt.timedelta(hours=9))


def fifth_birthday_after(issued: dt.date, birth_date: str) -> dt.date:
    """The fifth birthday after *issued* (a birthday on the issue day does not count): the
    expiry date of both JPKI certificates of an adult [guide]. A 29 February birthday falls
    on 28 February in common years [model]."""
    month, day = int(birth_date[4:6]), int(birth_date[6:8])
    found = 0
    year = issued.year
    while True:
        try:
            birthday = dt.date(year, month, day)
        except ValueError:  # 29 February in a common year
            birthday = dt.date(year, 2, 28)
        if birthday > issued:
            found += 1
            if found == 5:
                return birthday
        year += 1


def certificate_expiry(issued: dt.datetime, birth_date: str | None) -> dt.datetime:
    """``notAfter`` of a card certificate issued at *issued*: 23:59:59 Japan time on the
    fifth birthday after issue; without a birth date, five years after issue."""
    if birth_date is None:
        return issued + dt.timedelta(days=365 * 5)
    day = fifth_birthday_after(issued.astimezone(_JST).date(), birth_date)
    return dt.datetime.combine(day, dt.time(23, 59, 59), _JST).astimezone(dt.UTC)


def _random_serial() -> int:
    """A random positive serial of exactly 159 bits, so always 20 bytes in DER [model].

    ``x509.random_serial_number()`` alone is 159 random bits: one certificate in 128 got a
    19-byte serial, a certificate one byte shorter, and a trace (and a golden file) that
    differs in its READ BINARY lengths from one run to the next.
    """
    return x509.random_serial_number() | (1 << 158)


def _certificate(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    key_usage: x509.KeyUsage,
    serial: int | None = None,
    issued: dt.datetime | None = None,
    birth_date: str | None = None,
    crl_uri: str | None = None,
) -> bytes:
    now = (issued or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    not_after = now + dt.timedelta(days=365 * 10) if ca else certificate_expiry(now, birth_date)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or _random_serial())
        .not_valid_before(now - dt.timedelta(days=1) if ca else now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
    )
    if crl_uri is not None:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_uri)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
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


def generate_pki(
    *,
    with_signing: bool = True,
    issued: dt.datetime | None = None,
    birth_date: str | None = None,
    fresh_keys: bool | None = None,
) -> Pki:
    """Two TEST CAs and the card's key pairs with their certificates, issued at *issued*
    (default: now) and valid until the fifth birthday after it for a holder born on
    *birth_date* (``YYYYMMDD``; default: five years).

    The keys are the published TEST keys (:mod:`emulator.published_keys`), or newly
    generated ones with *fresh_keys* (default: :func:`fresh_keys_wanted`); the certificates
    are issued anew either way, so every card has its own serial numbers. The signing
    certificate carries no personal data in this emulator ([model]: the real one holds name,
    address, birth date and sex).
    """
    fresh = fresh_keys_wanted() if fresh_keys is None else fresh_keys
    auth_ca = _rsa_key(AUTH_CA, fresh)
    sign_ca = _rsa_key(SIGN_CA, fresh)
    auth_ca_name = _name("myna-hil TEST JPKI User Authentication CA")
    sign_ca_name = _name("myna-hil TEST JPKI Digital Signature CA")
    auth_ca_cert = _certificate(
        auth_ca_name,
        auth_ca.public_key(),
        auth_ca_name,
        auth_ca,
        ca=True,
        key_usage=_usage(sign=False, ca=True),
    )
    sign_ca_cert = _certificate(
        sign_ca_name,
        sign_ca.public_key(),
        sign_ca_name,
        sign_ca,
        ca=True,
        key_usage=_usage(sign=True, ca=True),
    )
    auth = _rsa_key(AUTH, fresh)
    auth_cert = _certificate(
        _name("myna-hil TEST card user authentication"),
        auth.public_key(),
        auth_ca_name,
        auth_ca,
        ca=False,
        key_usage=_usage(sign=False, ca=False),
        issued=issued,
        birth_date=birth_date,
        crl_uri=CRL_DISTRIBUTION_POINTS["auth"],
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
        _issue_signing(pki, sign_ca, fresh, issued, birth_date)
    return pki


def issue_signing(
    pki: Pki,
    *,
    issued: dt.datetime | None = None,
    birth_date: str | None = None,
    fresh_keys: bool | None = None,
) -> None:
    """Issue the signing key and certificate (a counter re-issuing them, or at init): the
    published TEST signing key, or with *fresh_keys* a new one; a new certificate always."""
    sign_ca = serialization.load_der_private_key(pki.sign_ca_key, None)
    assert isinstance(sign_ca, rsa.RSAPrivateKey)
    fresh = fresh_keys_wanted() if fresh_keys is None else fresh_keys
    _issue_signing(pki, sign_ca, fresh, issued, birth_date)


def _issue_signing(
    pki: Pki,
    sign_ca: rsa.RSAPrivateKey,
    fresh: bool,
    issued: dt.datetime | None,
    birth_date: str | None,
) -> None:
    sign_ca_cert = x509.load_der_x509_certificate(pki.sign_ca_cert)
    key = _rsa_key(SIGN, fresh)
    pki.sign_key = _der_key(key)
    pki.sign_cert = _certificate(
        _name("myna-hil TEST card digital signature"),
        key.public_key(),
        sign_ca_cert.subject,
        sign_ca,
        ca=False,
        key_usage=_usage(sign=True, ca=False),
        issued=issued,
        birth_date=birth_date,
        crl_uri=CRL_DISTRIBUTION_POINTS["sign"],
    )


def revoke_signing(pki: Pki) -> None:
    pki.sign_key = None
    pki.sign_cert = None


def card_serial(auth_cert_der: bytes) -> str:
    """[model] The card's 15-digit serial number (real cards: 15 digits [card]), derived from
    the authentication certificate's serial, the identity the HIL guard uses."""
    serial = x509.load_der_x509_certificate(auth_cert_der).serial_number
    return f"{serial % 10**CARD_SERIAL_DIGITS:0{CARD_SERIAL_DIGITS}d}"


def certificate_serial(cert_der: bytes) -> str:
    """Hex serial number of a certificate: the card identity the HIL interlocks use."""
    return format(x509.load_der_x509_certificate(cert_der).serial_number, "X")
