"""What a relying party does with a certificate before it trusts a signature: validity on
its own clock, the issuer's signature, then revocation by OCSP (a CRL when OCSP fails).

:func:`check_certificate` returns a :class:`Verdict`; it never raises for what the network
or the service does: an unreachable, erroring or lying service is the verdict
``service-error`` with the reason in ``detail``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from harness.revocation.server import OCSP_REQUEST

#: Seconds a relying party waits for the service.
TIMEOUT = 5.0
MAX_ANSWER = 4 * 1024 * 1024


class Outcome(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    HOLD = "hold"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NOT_ISSUED = "not-issued"  # wrong issuer, bad signature, or OCSP "unknown"
    SERVICE_ERROR = "service-error"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    detail: str
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    via: str | None = None  # "ocsp" / "crl" when the service answered

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.GOOD


class _ServiceError(Exception):
    pass


class Fetcher:
    """HTTP for a relying party: one keep-alive connection per service (scheme, host, port),
    reused request after request as a real service's HTTP client pools them.

    Close it (or use it as a context manager) when done; :func:`check_certificate` without
    one makes its own and closes it. A connection the service dropped while idle is opened
    again once. Redirects are not followed: an OCSP responder or CRL point answers itself.
    """

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}

    def fetch(self, url: str, body: bytes | None = None) -> bytes:
        """The body of a 200 answer to GET *url* (POST *body* as an OCSP request if given);
        raises :class:`_ServiceError` for anything else."""
        try:
            parts = urllib.parse.urlsplit(url)
            key = (parts.scheme, parts.hostname or "", parts.port)
        except ValueError:  # a port that is not a number
            raise _ServiceError(f"unreachable (not an HTTP URL: {url!r})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _ServiceError(f"unreachable (not an HTTP URL: {url!r})")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"Content-Type": OCSP_REQUEST} if body is not None else {}
        method = "GET" if body is None else "POST"
        for attempt in (1, 2):
            conn = self._connection(key)
            reused = conn.sock is not None
            try:
                conn.request(method, target, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read(MAX_ANSWER + 1)
                if not answer.isclosed():  # more than MAX_ANSWER: the rest is not read
                    self._drop(key)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop(key)
                if reused and attempt == 1:
                    continue  # the service closed the idle connection: once more, afresh
                raise _ServiceError(f"unreachable ({exc})") from None
            except (http.client.HTTPException, OSError) as exc:
                self._drop(key)
                raise _ServiceError(f"unreachable ({exc})") from None
            break
        if answer.status != 200:
            raise _ServiceError(f"HTTP {answer.status}")
        if len(data) > MAX_ANSWER:
            raise _ServiceError("answer too large")
        return data

    def _connection(self, key: tuple[str, str, int | None]) -> http.client.HTTPConnection:
        conn = self._connections.get(key)
        if conn is None:
            scheme, host, port = key
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = self._connections[key] = cls(host, port, timeout=self.timeout)
        return conn

    def _drop(self, key: tuple[str, str, int | None]) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_certificate(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    at: dt.datetime,
    ocsp_url: str | None,
    crl_url: str | None = None,
    timeout: float = TIMEOUT,
    fetcher: Fetcher | None = None,
) -> Verdict:
    """Validate *cert* (issued by *issuer*, the relying party's trust anchor) at time *at*.

    *fetcher* carries the HTTP requests (its connections stay open for the next check);
    without one, a fetcher with *timeout* is made for this check and closed after it."""
    if fetcher is None:
        with Fetcher(timeout) as own:
            return check_certificate(
                cert, issuer, at=at, ocsp_url=ocsp_url, crl_url=crl_url, fetcher=own
            )
    if at > cert.not_valid_after_utc:
        return Verdict(Outcome.EXPIRED, f"expired at {cert.not_valid_after_utc.isoformat()}")
    if at < cert.not_valid_before_utc:
        return Verdict(Outcome.NOT_YET_VALID, f"valid from {cert.not_valid_before_utc.isoformat()}")
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return Verdict(Outcome.NOT_ISSUED, "not issued by the trusted JPKI CA")
    problems = []
    if ocsp_url:
        try:
            return _by_ocsp(cert, issuer, ocsp_url, fetcher)
        except _ServiceError as exc:
            problems.append(f"OCSP: {exc}")
    if crl_url:
        try:
            return _by_crl(cert, issuer, crl_url, at, fetcher)
        except _ServiceError as exc:
            problems.append(f"CRL: {exc}")
    return Verdict(Outcome.SERVICE_ERROR, "; ".join(problems) or "no revocation service configured")


def _signed_by(
    issuer: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or algorithm is None:
        return False
    try:
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return False
    return True


def _by_ocsp(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, fetcher: Fetcher
) -> Verdict:
    nonce = os.urandom(16)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    der = request.public_bytes(Encoding.DER)
    try:
        response = ocsp.load_der_ocsp_response(fetcher.fetch(url, der))
    except ValueError:
        raise _ServiceError("not an OCSP response") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _ServiceError(f"answered {response.response_status.name.lower().replace('_', ' ')}")
    if not _signed_by(
        issuer, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm
    ):
        raise _ServiceError("the answer is not signed by the CA")
    if response.serial_number != cert.serial_number:
        raise _ServiceError("the answer is about another certificate")
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed is not None and echoed != nonce:
        raise _ServiceError("the answer carries another request's nonce (replayed?)")
    status = response.certificate_status
    if status is ocsp.OCSPCertStatus.GOOD:
        return Verdict(Outcome.GOOD, "OCSP: good", via="ocsp")
    if status is ocsp.OCSPCertStatus.UNKNOWN:
        return Verdict(Outcome.NOT_ISSUED, "OCSP: unknown to the issuer", via="ocsp")
    reason = response.revocation_reason
    return _revoked("ocsp", response.revocation_time_utc, reason)


def _revoked(via: str, when: dt.datetime | None, reason: x509.ReasonFlags | None) -> Verdict:
    hold = reason is x509.ReasonFlags.certificate_hold
    name = None if reason is None else reason.name
    return Verdict(
        Outcome.HOLD if hold else Outcome.REVOKED,
        f"{via.upper()}: {'on hold' if hold else 'revoked'}"
        + ("" if when is None else f" since {when.isoformat()}")
        + ("" if name is None else f" ({name})"),
        revoked_at=when,
        reason=name,
        via=via,
    )


def _by_crl(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, at: dt.datetime, fetcher: Fetcher
) -> Verdict:
    try:
        crl = x509.load_der_x509_crl(fetcher.fetch(url))
    except ValueError:
        raise _ServiceError("not a CRL") from None
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise _ServiceError("the CRL is not signed by the CA")
    if crl.next_update_utc is not None and at > crl.next_update_utc:
        raise _ServiceError("the CRL is out of date")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return Verdict(Outcome.GOOD, "CRL: not listed", via="crl")
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        reason = None
    return _revoked("crl", entry.revocation_date_utc, reason)
