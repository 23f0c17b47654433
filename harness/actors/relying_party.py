"""A relying party: an e-Tax / e-Gov style service that has the card sign, then validates
the signing certificate against the TEST revocation service, and shows the user a message.

The card part is the e-Tax signer's (signing password, certificate, signature). The service
part is :func:`harness.revocation.client.check_certificate` on the scenario's clock: validity
(the fifth birthday after issue), the issuer, then OCSP with a CRL fallback. Its one bad habit
(:class:`ServiceHabits`) is the one behind the commonest "my card is locked" report with
healthy counters: every failure is shown as a PIN error.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from cryptography import x509

from harness.actors.apps import SHOWN_LOCKED, Outcome, ReaderApp
from harness.clock import Clock
from harness.revocation.client import Fetcher, Verdict, check_certificate
from harness.revocation.client import Outcome as Check
from harness.trace.recorder import note
from harness.transport import Transport

SHOWN_ACCEPTED = "submitted: the signature was accepted"
SHOWN_SERVICE_DOWN = "the certificate check is unavailable: your card is fine, try again later"


def shown_for(verdict: Verdict, cert: x509.Certificate) -> str:
    """What a careful service tells the user about a certificate that failed its check."""
    if verdict.outcome is Check.REVOKED:
        when = "" if verdict.revoked_at is None else f" on {jst_date(verdict.revoked_at)}"
        return (
            f"your signing certificate was revoked{when}: "
            "apply for a new one at the municipal counter"
        )
    if verdict.outcome is Check.HOLD:
        return (
            "your signing certificate is suspended (card reported lost): "
            "go to the municipal counter"
        )
    if verdict.outcome is Check.EXPIRED:
        return (
            f"your signing certificate expired on {jst_date(cert.not_valid_after_utc)}: "
            "renew it at the municipal counter"
        )
    if verdict.outcome is Check.SERVICE_ERROR:
        return SHOWN_SERVICE_DOWN
    return f"the signing certificate is not accepted ({verdict.outcome.value})"


def jst_date(when: dt.datetime) -> str:
    """The date of *when* in Japan time (certificate dates are Japanese calendar days)."""
    return when.astimezone(dt.timezone(dt.timedelta(hours=9))).date().isoformat()


@dataclass(frozen=True)
class ServiceHabits:
    """How the service reports a failed check. The default one tells the truth."""

    failure_as_pin_error: bool = False  # any failure: "PIN locked"
    crl_fallback: bool = True  # ask the CRL when OCSP fails


class SigningService(ReaderApp):
    """Signs *document* with the card and validates the certificate before accepting it."""

    NAME = "e-gov-service"

    def __init__(
        self,
        transport: Transport,
        trust: x509.Certificate,
        clock: Clock,
        *,
        ocsp_url: str | None,
        crl_url: str | None = None,
        service_habits: ServiceHabits | None = None,
        rng: random.Random | None = None,
        fetcher: Fetcher | None = None,
    ) -> None:
        super().__init__(transport, rng=rng)
        #: Its HTTP client (connections kept open by whoever owns it); ``None``: a new
        #: connection per check.
        self.fetcher = fetcher
        self.trust = trust
        self.clock = clock
        self.ocsp_url = ocsp_url
        self.crl_url = crl_url
        self.service_habits = service_habits or ServiceHabits()
        self.last_verdict: Verdict | None = None

    def submit(self, typed: str, document: bytes) -> Outcome:
        signed = self.card_signature(typed, document)
        if isinstance(signed, Outcome):
            return signed
        cert, _ = signed
        habits = self.service_habits
        verdict = check_certificate(
            cert,
            self.trust,
            at=self.clock.now(),
            ocsp_url=self.ocsp_url,
            crl_url=self.crl_url if habits.crl_fallback else None,
            fetcher=self.fetcher,
        )
        self.last_verdict = verdict
        note(self.transport, self.NAME, "certificate-check", outcome=verdict.outcome.value)
        if verdict.ok:
            return self.show(Outcome(True, SHOWN_ACCEPTED))
        if habits.failure_as_pin_error:
            return self.show(Outcome(False, SHOWN_LOCKED))
        return self.show(Outcome(False, shown_for(verdict, cert)))
