"""Certificate dates and lifecycle events on the movable clock."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from emulator.identity import CRL_DISTRIBUTION_POINTS, certificate_expiry, fifth_birthday_after
from harness.cards import CERTIFICATES_ISSUED, HOLDER, shared_pki
from harness.clock import FakeClock
from harness.revocation.registry import Registry, Status
from tests.revocation.conftest import Service


@pytest.mark.parametrize(
    ("issued", "birth", "expires"),
    [
        (dt.date(2026, 3, 2), "19900401", dt.date(2030, 4, 1)),
        (dt.date(2026, 4, 1), "19900401", dt.date(2031, 4, 1)),  # issued on the birthday
        (dt.date(2026, 3, 31), "19900401", dt.date(2030, 4, 1)),
        (dt.date(2026, 3, 1), "20000229", dt.date(2031, 2, 28)),  # 29 February, common year
        (dt.date(2026, 2, 27), "19960229", dt.date(2030, 2, 28)),
        (dt.date(2027, 3, 1), "19960229", dt.date(2032, 2, 29)),  # a leap year keeps the 29th
    ],
)
def test_fifth_birthday_after_issue(issued: dt.date, birth: str, expires: dt.date) -> None:
    assert fifth_birthday_after(issued, birth) == expires


def test_expiry_is_the_last_second_of_the_day_in_japan() -> None:
    issued = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    assert certificate_expiry(issued, "19900401") == dt.datetime(
        2030, 4, 1, 14, 59, 59, tzinfo=dt.UTC
    )
    # Issued at 23:30 JST on the day before the birthday: that birthday counts.
    late = dt.datetime(2026, 3, 31, 14, 30, tzinfo=dt.UTC)
    assert certificate_expiry(late, "19900401").date() == dt.date(2030, 4, 1)


def test_card_certificates_carry_the_crl_point_and_the_birthday_expiry() -> None:
    pki = shared_pki()
    for kind, der in (("sign", pki.sign_cert), ("auth", pki.auth_cert)):
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        point = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
        assert point.full_name is not None
        assert point.full_name[0].value == CRL_DISTRIBUTION_POINTS[kind]
        assert cert.not_valid_before_utc == CERTIFICATES_ISSUED
        assert cert.not_valid_after_utc == certificate_expiry(
            CERTIFICATES_ISSUED, HOLDER.birth_date
        )
    ca = x509.load_der_x509_certificate(pki.sign_ca_cert)
    with pytest.raises(x509.ExtensionNotFound):
        ca.extensions.get_extension_for_class(x509.CRLDistributionPoints)


def test_a_move_revokes_the_signing_certificate_only(svc: Service) -> None:
    svc.clock.advance(days=3)
    revoked = svc.registry.basic_fact_changed("address")
    assert [(e.kind, e.status, e.reason) for e in revoked] == [
        ("sign", Status.REVOKED, x509.ReasonFlags.affiliation_changed)
    ]
    assert revoked[0].revoked_at == svc.clock.now()
    assert revoked[0].cause == "the holder's address changed"
    auth = svc.registry.lookup("auth", svc.cert("auth").serial_number)
    assert auth.status is Status.GOOD
    svc.clock.advance(days=1)
    assert svc.registry.basic_fact_changed("name") == []  # already revoked: the date stays
    assert svc.registry.lookup("sign", svc.cert("sign").serial_number).revoked_at == (
        svc.clock.now() - dt.timedelta(days=1)
    )


def test_a_lost_card_puts_both_on_hold(svc: Service) -> None:
    held = svc.registry.card_lost()
    assert {(e.kind, e.status) for e in held} == {("sign", Status.HOLD), ("auth", Status.HOLD)}
    assert all(e.reason is x509.ReasonFlags.certificate_hold for e in held)


def test_lifecycle_refuses_what_it_does_not_know(svc: Service) -> None:
    with pytest.raises(ValueError, match="not a basic fact"):
        svc.registry.basic_fact_changed("phone number")
    other = Registry(shared_pki(), FakeClock())
    with pytest.raises(ValueError, match="not a certificate of the sign CA"):
        other.register("sign", shared_pki().auth_cert)


def test_every_event_is_logged_on_the_clock(svc: Service) -> None:
    svc.clock.advance(hours=5)
    svc.registry.basic_fact_changed("sex")
    types = [(e.type, e.kind) for e in svc.registry.log.events]
    assert types == [("issued", "auth"), ("issued", "sign"), ("revoked", "sign")]
    last = svc.registry.log.events[-1]
    assert last.clock == svc.clock.now() and last.reason == "affiliation_changed"
