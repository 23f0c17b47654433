"""Client session for the JPKI application (公的個人認証): PINs, certificates, signatures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.grammar import CommandApdu, TokenInfo
from emulator.grammar.ids import JPKI, SHA256_DIGEST_INFO_PREFIX
from emulator.pins import SPECS
from emulator.protocol import HOME, JPKI_PINS
from harness.sessions.base import PinStatus, Session, pin_named

TOKEN_INFO_SIZE = 160
CLA_PROPRIETARY = 0x80
P1_AS_GIVEN = 0x00
SIGNATURE_LE = 0x100


_PINS: dict[str, tuple[int, int]] = {pin: (HOME[pin].ef, SPECS[pin].max_tries) for pin in JPKI_PINS}
_KEYS = {"auth": JPKI.EF_AUTH_KEY, "sign": JPKI.EF_SIGN_KEY}


@dataclass(frozen=True, slots=True)
class CertAvailability:
    """EF 0008: which certificates the card carries (``8F`` = present)."""

    sign: bool
    auth: bool

    @classmethod
    def from_bytes(cls, raw: bytes) -> CertAvailability:
        return cls(sign=raw[:1] == b"\x8f", auth=raw[1:2] == b"\x8f")


def digest_info(message: bytes) -> bytes:
    """SHA-256 DigestInfo of *message*: what real clients send with P1 ``00``."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()


def verify_signature(cert: x509.Certificate, message: bytes, signature: bytes) -> bool:
    """True when *signature* is a PKCS#1 v1.5 SHA-256 signature of *message* by *cert*."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


class JpkiSession(Session):
    """The JPKI application: two PINs (``auth``, ``sign``), two keys, four certificates."""

    AID = JPKI.AID
    NAME = "JPKI"

    def pin_status(self, name: str) -> PinStatus:
        """Counter of ``auth`` or ``sign`` by empty VERIFY: never spends a try."""
        fid, max_tries = _PINS[pin_named(name, tuple(_PINS), self.NAME)]
        return self._pin_status(name, fid, max_tries)

    def verify(self, name: str, pin: str | bytes) -> None:
        fid, _ = _PINS[pin_named(name, tuple(_PINS), self.NAME)]
        self._verify(fid, pin, f"JPKI {name}")

    def change(self, name: str, new: str | bytes) -> None:
        """Change ``auth`` / ``sign`` after verifying the old value in this session."""
        fid, _ = _PINS[pin_named(name, tuple(_PINS), self.NAME)]
        self._change(fid, new, f"JPKI {name}")

    def certificate(self, which: str) -> x509.Certificate:
        """``auth``, ``sign`` (needs the signing password), ``auth-ca`` or ``sign-ca``."""
        fid = {
            "auth": JPKI.EF_AUTH_CERT,
            "sign": JPKI.EF_SIGN_CERT,
            "auth-ca": JPKI.EF_AUTH_CA_CERT,
            "sign-ca": JPKI.EF_SIGN_CA_CERT,
        }[which]
        return x509.load_der_x509_certificate(self.read_der(fid))

    def token_info(self) -> TokenInfo:
        return TokenInfo.from_bytes(self.read_ef(JPKI.EF_TOKEN_INFO, TOKEN_INFO_SIZE))

    def cert_availability(self) -> CertAvailability:
        return CertAvailability.from_bytes(self.read_ef(JPKI.EF_CERT_AVAILABILITY, 3))

    def sign(self, key: str, data: bytes, mode: int = P1_AS_GIVEN) -> bytes:
        """COMPUTE DIGITAL SIGNATURE with the ``auth`` or ``sign`` key (PIN verified first)."""
        self.select_ef(_KEYS[key])
        return self.call(
            CommandApdu(
                CLA_PROPRIETARY, JPKI.INS_COMPUTE_DIGITAL_SIGNATURE, mode, 0x80, data, SIGNATURE_LE
            ),
            f"SIGN with {key} key",
        )

    def sign_message(self, key: str, message: bytes) -> bytes:
        """PKCS#1 v1.5 SHA-256 signature of *message* (DigestInfo built here, P1 ``00``)."""
        return self.sign(key, digest_info(message))
