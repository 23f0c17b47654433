"""The issuer's certificate register: what was issued, and what happened to it since.

Lifecycle events happen on the scenario's clock; what is public and what is ours is listed in
docs/relying-party.md ("Public evidence"):

- a change of one of the four basic facts (name, address, birth date, sex) revokes the
  **signing** certificate, which certifies them; the authentication certificate carries no
  personal data and stays valid -- reason ``affiliationChanged``;
- a card reported lost or stolen puts both certificates on hold (一時保留) -- reason
  ``certificateHold`` (a hold is "doubt about the key", never released; that a lost card is
  such a doubt for both certificates is [model]); the holder gets new certificates instead;
- a certificate expires on the holder's fifth birthday after issue (its ``notAfter``); that
  needs no event: a relying party compares ``notAfter`` with its own clock.

Every event is written to the service log (:mod:`harness.revocation.log`).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.state import Pki
from harness.clock import Clock
from harness.revocation.log import ServiceLog

#: The four basic facts (基本4情報) a signing certificate certifies.
BASIC_FACTS = ("name", "address", "birth date", "sex")
#: The kinds of end-entity certificate on a card.
KINDS = ("sign", "auth")


class Status(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    HOLD = "hold"


@dataclass
class Issued:
    """One certificate the issuer made, and its state."""

    kind: str  # "sign" or "auth"
    cert: x509.Certificate
    status: Status = Status.GOOD
    reason: x509.ReasonFlags | None = None
    revoked_at: dt.datetime | None = None
    cause: str | None = None  # the event, in words ("address changed")

    @property
    def serial(self) -> int:
        return self.cert.serial_number


@dataclass(frozen=True)
class Authority:
    """A TEST CA: its certificate and key (from the harness's TEST PKI)."""

    kind: str
    cert: x509.Certificate
    key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def from_der(cls, kind: str, cert_der: bytes, key_der: bytes) -> Authority:
        return cls(kind, x509.load_der_x509_certificate(cert_der), _ca_key(key_der))


@functools.cache
def _ca_key(der: bytes) -> rsa.RSAPrivateKey:
    """A TEST CA key, parsed once per process. The harness made it (emulator.identity), so
    the 0.1 s consistency check of an RSA key from elsewhere is skipped, as the card does."""
    key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("a TEST CA key is RSA")
    return key


class UnknownCertificateError(LookupError):
    """A serial number this issuer never issued."""


class Registry:
    """The issuer's register of the certificates of *pki*'s two TEST CAs, on *clock*.

    A register stands for one holder (a scenario's card): a lifecycle event applies to every
    certificate in it of the kind the event concerns.
    """

    def __init__(self, pki: Pki, clock: Clock, log: ServiceLog | None = None) -> None:
        self.clock = clock
        self.log = log if log is not None else ServiceLog(clock)
        self.authorities = {
            "sign": Authority.from_der("sign", pki.sign_ca_cert, pki.sign_ca_key),
            "auth": Authority.from_der("auth", pki.auth_ca_cert, pki.auth_ca_key),
        }
        self._issued: dict[tuple[str, int], Issued] = {}

    # --- issue ------------------------------------------------------------------------------

    def register(self, kind: str, cert_der: bytes) -> Issued:
        """Record a certificate the *kind* CA issued (checked: that CA's name and signature)."""
        cert = x509.load_der_x509_certificate(cert_der)
        ca = self.authorities[kind]
        if cert.issuer != ca.cert.subject:
            raise ValueError(f"not a certificate of the {kind} CA")
        cert.verify_directly_issued_by(ca.cert)
        entry = self._issued.setdefault((kind, cert.serial_number), Issued(kind, cert))
        self.log.event(
            "issued", kind=kind, serial=cert.serial_number, expires=cert.not_valid_after_utc
        )
        return entry

    def register_card(self, pki: Pki) -> None:
        """Record the certificates of a card (what the issuer knows of every card it made)."""
        self.register("auth", pki.auth_cert)
        if pki.sign_cert is not None:
            self.register("sign", pki.sign_cert)

    # --- lifecycle ---------------------------------------------------------------------------

    def basic_fact_changed(self, fact: str) -> list[Issued]:
        """The municipality recorded a change of *fact* (one of :data:`BASIC_FACTS`): every
        valid signing certificate is revoked now; authentication certificates stay valid."""
        if fact not in BASIC_FACTS:
            raise ValueError(f"not a basic fact: {fact!r}; one of {', '.join(BASIC_FACTS)}")
        return self._revoke(
            "sign", x509.ReasonFlags.affiliation_changed, f"the holder's {fact} changed"
        )

    def card_lost(self) -> list[Issued]:
        """The holder reported the card lost: both certificates on hold (never released)."""
        held = []
        for kind in KINDS:
            held += self._revoke(
                kind, x509.ReasonFlags.certificate_hold, "the card was reported lost"
            )
        return held

    def _revoke(self, kind: str, reason: x509.ReasonFlags, cause: str) -> list[Issued]:
        now = self.clock.now()
        done = []
        for entry in self._issued.values():
            if entry.kind != kind or entry.status is not Status.GOOD:
                continue
            entry.status = (
                Status.HOLD if reason is x509.ReasonFlags.certificate_hold else Status.REVOKED
            )
            entry.reason, entry.revoked_at, entry.cause = reason, now, cause
            self.log.event(
                "revoked",
                kind=kind,
                serial=entry.serial,
                status=entry.status.value,
                reason=reason.name,
                cause=cause,
                revoked_at=now,
            )
            done.append(entry)
        return done

    # --- queries ------------------------------------------------------------------------------

    def lookup(self, kind: str, serial: int) -> Issued:
        try:
            return self._issued[(kind, serial)]
        except KeyError:
            raise UnknownCertificateError(
                f"serial {serial:X} was not issued by the {kind} CA"
            ) from None

    def kind_of_issuer(self, issuer: x509.Name) -> str | None:
        """``sign`` / ``auth`` for the subject of one of the CAs, else ``None``."""
        for kind, ca in self.authorities.items():
            if ca.cert.subject == issuer:
                return kind
        return None

    def revoked(self, kind: str) -> list[Issued]:
        """The *kind* CA's revoked or held certificates that have not expired (a CRL lists
        a certificate until its ``notAfter``, RFC 5280 section 3.3)."""
        now = self.clock.now()
        return [
            e
            for e in self._issued.values()
            if e.kind == kind and e.status is not Status.GOOD and e.cert.not_valid_after_utc >= now
        ]
