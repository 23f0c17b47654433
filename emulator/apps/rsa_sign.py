"""RSA-2048 signing the way the JPKI application does it.

Reference: docs/card.md#compute-digital-signature.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from emulator.errors import SwError
from emulator.grammar import SW
from emulator.grammar.ids import SHA256_DIGEST_INFO_PREFIX

MAX_RAW_INPUT = 256 - 11  # PKCS#1 v1.5 type 1 needs at least 8 bytes of FF padding


class SigningKey:
    """A loaded private key with the CRT numbers kept for raw PKCS#1 v1.5 signing."""

    def __init__(self, pkcs8_der: bytes) -> None:
        # The keys are this project's own, validated when generated; re-validating them on
        # every card start costs ~20 ms per key.
        key = serialization.load_der_private_key(
            pkcs8_der, None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("JPKI keys are RSA")
        self.key = key
        numbers = key.private_numbers()
        self._p, self._q = numbers.p, numbers.q
        self._dp, self._dq, self._qinv = numbers.dmp1, numbers.dmq1, numbers.iqmp
        self.n = numbers.public_numbers.n
        self.size = (self.n.bit_length() + 7) // 8

    def _raw_pkcs1(self, payload: bytes) -> bytes:
        """EMSA-PKCS1-v1_5 type-1 padding of *payload* as given, then RSASP1 (CRT)."""
        em = b"\x00\x01" + b"\xff" * (self.size - len(payload) - 3) + b"\x00" + payload
        m = int.from_bytes(em, "big")
        s1 = pow(m, self._dp, self._p)
        s2 = pow(m, self._dq, self._q)
        h = (self._qinv * (s1 - s2)) % self._p
        return (s2 + h * self._q).to_bytes(self.size, "big")

    def sign(self, mode: int, data: bytes) -> bytes:
        """Sign *data* as COMPUTE DIGITAL SIGNATURE with P1 = *mode* asks [card]."""
        if mode == 0x00:  # data padded as given (normally a DigestInfo)
            if not 1 <= len(data) <= MAX_RAW_INPUT:
                raise SwError(SW.WRONG_LENGTH)
            return self._raw_pkcs1(data)
        if mode == 0x01:  # card hashes, signs the bare hash
            return self._raw_pkcs1(hashlib.sha256(data).digest())
        if mode in (0x02, 0x04):  # data is a SHA-256 hash
            if len(data) != 32:
                raise SwError(SW.WRONG_LENGTH)
            digest = data
        elif mode in (0x03, 0x05):  # card hashes
            digest = hashlib.sha256(data).digest()
        else:
            raise SwError(SW.INCORRECT_P1P2)
        if mode in (0x02, 0x03):
            return self._raw_pkcs1(SHA256_DIGEST_INFO_PREFIX + digest)
        # [model] PSS details: MGF1-SHA-256, salt as long as the hash.
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return self.key.sign(digest, pss, utils.Prehashed(hashes.SHA256()))
