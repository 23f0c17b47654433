"""RSA-2048 signing the way the JPKI application does it.

Every form whose input OpenSSL can take is signed by OpenSSL (``cryptography``): a DigestInfo
of a hash it knows (P1 ``00`` with such a DigestInfo, P1 ``02``/``03``) through PKCS#1 v1.5
with a prehashed digest, PSS (P1 ``04``/``05``) likewise. PKCS#1 v1.5 is deterministic, so the
answer is byte for byte the one the raw computation gives (``tests/emulator/
test_signature_paths.py`` compares them for every P1). Two forms have no OpenSSL primitive in
``cryptography``: padding a block that is not a DigestInfo (P1 ``00`` with other data) and the
bare hash of P1 ``01``; they keep the raw CRT exponentiation (``pow``), about 20x slower.

Reference: docs/card.md#compute-digital-signature.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from emulator.errors import SwError
from emulator.grammar import SW
from emulator.grammar.ids import SHA256_DIGEST_INFO_PREFIX

MAX_RAW_INPUT = 256 - 11  # PKCS#1 v1.5 type 1 needs at least 8 bytes of FF padding
SHA256_SIZE = 32

_PKCS1 = padding.PKCS1v15()
_PREHASHED_SHA256 = utils.Prehashed(hashes.SHA256())
#: [model] PSS details: MGF1-SHA-256, salt as long as the hash.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=SHA256_SIZE)

#: DER DigestInfo prefixes (RFC 8017 §9.2 note 1) of the hashes OpenSSL signs as prehashed,
#: by the total DigestInfo length they give: a P1 ``00`` block that is one of them goes
#: through OpenSSL, any other block is padded raw.
_DIGEST_INFOS: dict[int, tuple[bytes, utils.Prehashed]] = {
    len(prefix) + algorithm.digest_size: (prefix, utils.Prehashed(algorithm))
    for prefix, algorithm in (
        (bytes.fromhex("3021300906052b0e03021a05000414"), hashes.SHA1()),
        (bytes.fromhex("302d300d06096086480165030402040500041c"), hashes.SHA224()),
        (SHA256_DIGEST_INFO_PREFIX, hashes.SHA256()),
        (bytes.fromhex("3041300d060960864801650304020205000430"), hashes.SHA384()),
        (bytes.fromhex("3051300d060960864801650304020305000440"), hashes.SHA512()),
    )
}


class SigningKey:
    """A loaded private key; its CRT numbers are read only if a raw form is ever asked."""

    def __init__(self, pkcs8_der: bytes) -> None:
        # The keys are this project's own, validated when generated; re-validating them on
        # every card start costs ~20 ms per key.
        key = serialization.load_der_private_key(
            pkcs8_der, None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("JPKI keys are RSA")
        self.key = key
        self.size = key.key_size // 8
        self._crt: tuple[int, int, int, int, int] | None = None

    def raw_pkcs1(self, payload: bytes) -> bytes:
        """EMSA-PKCS1-v1_5 type-1 padding of *payload* as given, then RSASP1 (CRT).

        For blocks no OpenSSL primitive of ``cryptography`` pads as given."""
        if self._crt is None:
            n = self.key.private_numbers()
            self._crt = (n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
        p, q, dp, dq, qinv = self._crt
        em = b"\x00\x01" + b"\xff" * (self.size - len(payload) - 3) + b"\x00" + payload
        m = int.from_bytes(em, "big")
        s1 = pow(m, dp, p)
        s2 = pow(m, dq, q)
        h = (qinv * (s1 - s2)) % p
        return (s2 + h * q).to_bytes(self.size, "big")

    def _padded(self, block: bytes) -> bytes:
        """PKCS#1 v1.5 of *block* as given: by OpenSSL when it is a DigestInfo it knows."""
        known = _DIGEST_INFOS.get(len(block))
        if known is not None and block.startswith(known[0]):
            return self.key.sign(block[len(known[0]) :], _PKCS1, known[1])
        return self.raw_pkcs1(block)

    def sign(self, mode: int, data: bytes) -> bytes:
        """Sign *data* as COMPUTE DIGITAL SIGNATURE with P1 = *mode* asks [card]; ``SwError``
        for a length the mode refuses or an unknown mode."""
        if mode == 0x00:  # data padded as given (normally a DigestInfo)
            if not 1 <= len(data) <= MAX_RAW_INPUT:
                raise SwError(SW.WRONG_LENGTH)
            return self._padded(data)
        if mode == 0x01:  # card hashes, signs the bare hash (no DigestInfo: raw)
            return self.raw_pkcs1(hashlib.sha256(data).digest())
        if mode in (0x02, 0x04):  # data is a SHA-256 hash
            if len(data) != SHA256_SIZE:
                raise SwError(SW.WRONG_LENGTH)
            digest = data
        elif mode in (0x03, 0x05):  # card hashes
            digest = hashlib.sha256(data).digest()
        else:
            raise SwError(SW.INCORRECT_P1P2)
        if mode in (0x02, 0x03):
            return self.key.sign(digest, _PKCS1, _PREHASHED_SHA256)
        return self.key.sign(digest, _PSS, _PREHASHED_SHA256)


@functools.lru_cache(maxsize=16)
def signing_key(pkcs8_der: bytes) -> SigningKey:
    """The loaded key of *pkcs8_der*, shared by every card that holds it (the cards of a test
    run share their TEST keys; a key holds no per-card state)."""
    return SigningKey(pkcs8_der)
