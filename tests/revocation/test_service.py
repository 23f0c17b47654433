"""The service's CRL and OCSP answers, read with ``cryptography`` and with the openssl CLI,
and what a relying party makes of them (client verdicts, faults, bad requests)."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from harness.revocation.client import Fetcher, Outcome, check_certificate
from harness.revocation.server import OCSP_REQUEST
from tests.revocation.conftest import Service

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


def fetch(url: str, body: bytes | None = None, media: str = OCSP_REQUEST) -> bytes:
    headers = {"Content-Type": media} if body is not None else {}
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5) as rsp:
        data: bytes = rsp.read()
        return data


def ocsp_request(svc: Service, kind: str, *, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(svc.cert(kind), svc.ca(kind), hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


def signed_by(ca: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and response.signature_hash_algorithm
    key.verify(
        response.signature,
        response.tbs_response_bytes,
        padding.PKCS1v15(),
        response.signature_hash_algorithm,
    )
    return True


# --- CRL -----------------------------------------------------------------------------------


def test_crl_lists_the_revoked_signing_certificate(svc: Service) -> None:
    crl = x509.load_der_x509_crl(fetch(svc.service.crl_url("sign")))
    assert crl.is_signature_valid(svc.ca("sign").public_key())  # type: ignore[arg-type]
    assert len(crl) == 0 and crl.issuer == svc.ca("sign").subject
    svc.clock.advance(days=3)
    svc.registry.basic_fact_changed("address")
    svc.clock.advance(hours=1)
    crl = x509.load_der_x509_crl(fetch(svc.service.crl_url("sign")))
    assert crl.is_signature_valid(svc.ca("sign").public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(svc.cert("sign").serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == svc.clock.now() - dt.timedelta(hours=1)
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.affiliation_changed
    assert crl.last_update_utc == svc.clock.now()
    auth_crl = x509.load_der_x509_crl(fetch(svc.service.crl_url("auth")))
    assert len(auth_crl) == 0  # the move leaves the authentication certificate alone


def test_crl_drops_a_revoked_certificate_after_it_expires(svc: Service) -> None:
    svc.registry.basic_fact_changed("name")
    svc.clock.advance(svc.cert("sign").not_valid_after_utc - svc.clock.now())
    assert len(x509.load_der_x509_crl(fetch(svc.service.crl_url("sign")))) == 1
    svc.clock.advance(seconds=1)
    assert len(x509.load_der_x509_crl(fetch(svc.service.crl_url("sign")))) == 0


# --- OCSP ----------------------------------------------------------------------------------


def test_ocsp_good_then_revoked_signed_by_the_ca_with_the_nonce(svc: Service) -> None:
    nonce = b"0123456789abcdef"
    rsp = ocsp.load_der_ocsp_response(
        fetch(svc.service.ocsp_url, ocsp_request(svc, "sign", nonce=nonce))
    )
    assert rsp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert rsp.certificate_status is ocsp.OCSPCertStatus.GOOD and signed_by(svc.ca("sign"), rsp)
    assert rsp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    svc.clock.advance(days=2)
    svc.registry.basic_fact_changed("address")
    # The GET form of RFC 6960 appendix A.
    encoded = base64.b64encode(ocsp_request(svc, "sign")).decode()
    rsp = ocsp.load_der_ocsp_response(fetch(f"{svc.service.ocsp_url}/{encoded}"))
    assert rsp.certificate_status is ocsp.OCSPCertStatus.REVOKED and signed_by(svc.ca("sign"), rsp)
    assert rsp.revocation_time_utc == svc.clock.now()
    assert rsp.revocation_reason is x509.ReasonFlags.affiliation_changed
    assert rsp.serial_number == svc.cert("sign").serial_number
    auth = ocsp.load_der_ocsp_response(fetch(svc.service.ocsp_url, ocsp_request(svc, "auth")))
    assert auth.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_ocsp_unknown_serial_other_ca_and_garbage(svc: Service) -> None:
    ca = svc.ca("sign")
    name_hash = _hash(ca.subject.public_bytes())
    key_hash = _hash(ca.public_key().public_bytes(DER, serialization.PublicFormat.PKCS1))
    req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(name_hash, key_hash, 12345, hashes.SHA1())
        .build()
        .public_bytes(DER)
    )
    rsp = ocsp.load_der_ocsp_response(fetch(svc.service.ocsp_url, req))
    assert rsp.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    other = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(b"\0" * 20, b"\0" * 20, 1, hashes.SHA1())
        .build()
        .public_bytes(DER)
    )
    rsp = ocsp.load_der_ocsp_response(fetch(svc.service.ocsp_url, other))
    assert rsp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    rsp = ocsp.load_der_ocsp_response(fetch(svc.service.ocsp_url, b"\x30\x03junk"))
    assert rsp.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    statuses = [e.status for e in svc.registry.log.events if e.type == "decision"]
    assert statuses == ["unknown", "error", "error"]


def _hash(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(data)
    return digest.finalize()


def test_http_errors_are_answers_not_crashes(svc: Service) -> None:
    for url, body, media, code in (
        (f"{svc.service.url}/nothing", None, OCSP_REQUEST, 404),
        (svc.service.ocsp_url, b"x", "text/plain", 415),
        (f"{svc.service.ocsp_url}/%%%not-base64", None, OCSP_REQUEST, 400),
        (f"{svc.service.url}/crl/sign.crl", b"x", OCSP_REQUEST, 404),
        (svc.service.ocsp_url, b"", OCSP_REQUEST, 400),
        (svc.service.ocsp_url, b"\x30" * (64 * 1024 + 1), OCSP_REQUEST, 413),
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            fetch(url, body, media)
        assert err.value.code == code, url


# --- what a relying party concludes -------------------------------------------------------------


def check(svc: Service, kind: str = "sign", **kwargs: object) -> Outcome:
    args: dict[str, object] = {
        "at": svc.clock.now(),
        "ocsp_url": svc.service.ocsp_url,
        "crl_url": svc.service.crl_url(kind),
    }
    args.update(kwargs)
    return check_certificate(svc.cert(kind), svc.ca(kind), **args).outcome  # type: ignore[arg-type]


def test_client_verdicts_on_the_clock(svc: Service) -> None:
    assert check(svc) is Outcome.GOOD
    cert = svc.cert("sign")
    assert check(svc, at=cert.not_valid_after_utc + dt.timedelta(seconds=1)) is Outcome.EXPIRED
    assert check(svc, at=cert.not_valid_before_utc - dt.timedelta(seconds=1)) is (
        Outcome.NOT_YET_VALID
    )
    wrong = check_certificate(cert, svc.ca("auth"), at=svc.clock.now(), ocsp_url=None)
    assert wrong.outcome is Outcome.NOT_ISSUED
    svc.registry.card_lost()
    assert check(svc) is Outcome.HOLD
    assert check(svc, ocsp_url=None) is Outcome.HOLD  # the CRL says the same


def test_faults_are_service_errors_and_the_crl_is_the_fallback(svc: Service) -> None:
    svc.service.inject("try-later")
    assert check(svc) is Outcome.GOOD  # OCSP tryLater, the CRL answers
    verdict = check_certificate(
        svc.cert("sign"), svc.ca("sign"), at=svc.clock.now(), ocsp_url=svc.service.ocsp_url
    )
    assert verdict.outcome is Outcome.SERVICE_ERROR and "try later" in verdict.detail
    svc.service.inject("internal-error")
    assert check(svc, crl_url=None) is Outcome.SERVICE_ERROR
    svc.service.inject("http-503")
    verdict = check_certificate(
        svc.cert("sign"),
        svc.ca("sign"),
        at=svc.clock.now(),
        ocsp_url=svc.service.ocsp_url,
        crl_url=svc.service.crl_url("sign"),
    )
    assert verdict.outcome is Outcome.SERVICE_ERROR
    assert verdict.detail == "OCSP: HTTP 503; CRL: HTTP 503"
    with pytest.raises(ValueError, match="unknown fault"):
        svc.service.inject("slow")


def test_an_unreachable_service_is_a_service_error(svc: Service) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused at once
        verdict = check_certificate(
            svc.cert("sign"),
            svc.ca("sign"),
            at=svc.clock.now(),
            ocsp_url=f"http://127.0.0.1:{port}/ocsp",
            timeout=2,
        )
    assert verdict.outcome is Outcome.SERVICE_ERROR and "unreachable" in verdict.detail


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/ocsp", "http://127.0.0.1:port/ocsp", "ocsp"])
def test_a_url_that_is_not_http_is_a_service_error(svc: Service, url: str) -> None:
    verdict = check_certificate(svc.cert("sign"), svc.ca("sign"), at=svc.clock.now(), ocsp_url=url)
    assert verdict.outcome is Outcome.SERVICE_ERROR
    assert verdict.detail == f"OCSP: unreachable (not an HTTP URL: {url!r})"


def test_a_fetcher_keeps_one_connection_and_reopens_after_a_refusal(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[tuple[str, int | None]] = []
    connect = http.client.HTTPConnection.connect

    def counting(self: http.client.HTTPConnection) -> None:
        connects.append((self.host, self.port))
        connect(self)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", counting)

    def verdict(fetcher: Fetcher) -> Outcome:
        return check_certificate(
            svc.cert("sign"),
            svc.ca("sign"),
            at=svc.clock.now(),
            ocsp_url=svc.service.ocsp_url,
            crl_url=svc.service.crl_url("sign"),
            fetcher=fetcher,
        ).outcome

    with Fetcher() as fetcher:
        assert [verdict(fetcher) for _ in range(3)] == [Outcome.GOOD] * 3
        assert len(connects) == 1  # three OCSP round trips, one connection
        svc.service.inject("http-503")  # refused before the POST body is read: closed
        assert verdict(fetcher) is Outcome.SERVICE_ERROR
        svc.service.inject(None)
        assert verdict(fetcher) is Outcome.GOOD  # a fresh connection, no stale body
        assert len(connects) == 3  # OCSP 503, CRL 503 (each closed), then the good one
    # without a fetcher of its own, every check opens and closes its own connection
    assert check(svc) is Outcome.GOOD
    assert len(connects) == 4


# --- the openssl command-line tools -----------------------------------------------------------

#: Skipped without the tool, except in CI (ci/install-system.sh installs it): there it fails.
needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None and not os.environ.get("CI"),
    reason="the openssl command is not installed (Debian package openssl)",
)


def _pem(tmp_path: Path, name: str, cert: x509.Certificate) -> Path:
    path = tmp_path / name
    path.write_bytes(cert.public_bytes(PEM))
    return path


@needs_openssl
def test_openssl_ocsp_reads_good_and_revoked(svc_now: Service, tmp_path: Path) -> None:
    svc = svc_now
    ca = _pem(tmp_path, "ca.pem", svc.ca("sign"))
    cert = _pem(tmp_path, "sign.pem", svc.cert("sign"))
    argv = ["openssl", "ocsp", "-issuer", str(ca), "-cert", str(cert), "-CAfile", str(ca)]
    argv += ["-url", svc.service.ocsp_url]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert "Response verify OK" in first.stderr + first.stdout
    assert f"{cert}: good" in first.stdout
    svc.registry.basic_fact_changed("address")  # not advanced: openssl checks its own clock
    second = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert second.returncode == 0, second.stderr
    assert f"{cert}: revoked" in second.stdout
    assert "Reason: affiliationChanged" in second.stdout
    when = svc.clock.now().strftime("%b %e %H:%M:%S %Y GMT")
    assert f"Revocation Time: {when}" in second.stdout


@needs_openssl
def test_openssl_crl_verifies_and_lists(svc: Service, tmp_path: Path) -> None:
    svc.registry.basic_fact_changed("name")
    crl = tmp_path / "sign.crl"
    crl.write_bytes(fetch(svc.service.crl_url("sign")))
    ca = _pem(tmp_path, "ca.pem", svc.ca("sign"))
    out = subprocess.run(
        [
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            str(crl),
            "-CAfile",
            str(ca),
            "-noout",
            "-text",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "verify OK" in out.stderr + out.stdout
    serial = format(svc.cert("sign").serial_number, "X")
    serial = serial.zfill(len(serial) + len(serial) % 2)
    assert f"Serial Number: {serial}" in out.stdout
    assert "Affiliation Changed" in out.stdout
