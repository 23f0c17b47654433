"""Signed answers from the register: CRLs (RFC 5280) and OCSP responses (RFC 6960).

Both are signed by the CA that issued the certificates in question ([model]: whether J-LIS
signs OCSP answers with the CA key or a delegated responder key is not public; a CA-signed
answer is what RFC 6960 section 4.2.2.2 allows first). Every answer is logged as a decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from harness.revocation.registry import Registry, Status, UnknownCertificateError

#: How long an answer says it stays current ([model]: a day, the usual CRL period).
VALIDITY = dt.timedelta(hours=24)
#: Faults the service can be told to answer with (a service that is down or broken).
FAULTS = ("try-later", "internal-error", "http-503")


def build_crl(registry: Registry, kind: str) -> bytes:
    """The *kind* CA's current CRL (DER): every revoked or held certificate not yet expired."""
    ca = registry.authorities[kind]
    now = registry.clock.now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(now + VALIDITY)
        .add_extension(x509.CRLNumber(len(registry.log.events)), critical=False)
    )
    listed = registry.revoked(kind)
    for entry in listed:
        assert entry.revoked_at is not None and entry.reason is not None
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(entry.reason), critical=False)
            .build()
        )
    crl = builder.sign(ca.key, hashes.SHA256())
    registry.log.decision(
        "crl",
        "served",
        kind=kind,
        detail=f"CRL with {len(listed)} entr{'y' if len(listed) == 1 else 'ies'}",
    )
    return crl.public_bytes(serialization.Encoding.DER)


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    return hashlib.new(algorithm.name, key).digest()


def _name_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    return hashlib.new(algorithm.name, cert.subject.public_bytes()).digest()


def answer_ocsp(registry: Registry, request_der: bytes, fault: str | None = None) -> bytes:
    """The DER OCSP response to *request_der*; *fault* makes it an error answer."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        registry.log.decision("ocsp", "error", detail="malformed OCSP request")
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    serial = request.serial_number
    if fault in ("try-later", "internal-error"):
        status = (
            ocsp.OCSPResponseStatus.TRY_LATER
            if fault == "try-later"
            else ocsp.OCSPResponseStatus.INTERNAL_ERROR
        )
        registry.log.decision(
            "ocsp", "error", serial=serial, detail=f"answered {fault} (injected fault)"
        )
        return _unsuccessful(status)
    algorithm = request.hash_algorithm
    kind = next(
        (
            k
            for k, ca in registry.authorities.items()
            if request.issuer_name_hash == _name_hash(ca.cert, algorithm)
            and request.issuer_key_hash == _key_hash(ca.cert, algorithm)
        ),
        None,
    )
    if kind is None:
        registry.log.decision(
            "ocsp", "error", serial=serial, detail="not one of this service's CAs"
        )
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    ca = registry.authorities[kind]
    now = registry.clock.now()
    builder = ocsp.OCSPResponseBuilder()
    try:
        entry = registry.lookup(kind, serial)
    except UnknownCertificateError:
        builder = builder.add_response_by_hash(
            request.issuer_name_hash,
            request.issuer_key_hash,
            serial,
            algorithm,
            ocsp.OCSPCertStatus.UNKNOWN,
            now,
            now + VALIDITY,
            None,
            None,
        )
        registry.log.decision("ocsp", "unknown", kind=kind, serial=serial)
    else:
        good = entry.status is Status.GOOD
        builder = builder.add_response(
            cert=entry.cert,
            issuer=ca.cert,
            algorithm=algorithm,
            cert_status=ocsp.OCSPCertStatus.GOOD if good else ocsp.OCSPCertStatus.REVOKED,
            this_update=now,
            next_update=now + VALIDITY,
            revocation_time=None if good else entry.revoked_at,
            revocation_reason=None if good else entry.reason,
        )
        registry.log.decision(
            "ocsp",
            entry.status.value,
            kind=kind,
            serial=serial,
            reason=None if entry.reason is None else entry.reason.name,
            cause=entry.cause,
            revoked_at=entry.revoked_at,
        )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
    nonce = _nonce(request)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    response = builder.sign(ca.key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        ext = request.extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return None
    return ext.value.nonce


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
