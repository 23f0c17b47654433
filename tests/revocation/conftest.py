"""A register and a running TEST revocation service on a fake clock, per test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509

from emulator.state import Pki
from harness.cards import shared_pki
from harness.clock import FakeClock
from harness.revocation.registry import Registry
from harness.revocation.server import RevocationService


@dataclass
class Service:
    clock: FakeClock
    registry: Registry
    service: RevocationService
    pki: Pki

    def cert(self, kind: str) -> x509.Certificate:
        der = self.pki.sign_cert if kind == "sign" else self.pki.auth_cert
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def ca(self, kind: str) -> x509.Certificate:
        return self.registry.authorities[kind].cert


def _service(clock: FakeClock) -> Iterator[Service]:
    pki = shared_pki()
    registry = Registry(pki, clock)
    registry.register_card(pki)
    with RevocationService(registry) as service:
        yield Service(clock, registry, service, pki)


@pytest.fixture
def svc() -> Iterator[Service]:
    """On the scenario clock (starts at 2026-04-01 09:00 UTC)."""
    yield from _service(FakeClock())


@pytest.fixture
def svc_now() -> Iterator[Service]:
    """On a fake clock that starts at the wall clock: for tools that check times against the
    system clock (openssl ocsp)."""
    yield from _service(FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0)))
