"""The catalogue, part 3: the other phantom -- the card is fine, the service says no.

Each unit starts the TEST revocation service (:mod:`harness.revocation`) on the scenario's
clock with the card's issuer, lets an e-Gov style service (:mod:`harness.actors.relying_party`)
sign with the card and check the certificate, and shows that a service which reports any
failure as a PIN error tells a holder with full counters that the card is locked; the
forensics (trace + service log) say why. docs/relying-party.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography import x509

from emulator.state import Pki
from harness.actors.apps import SHOWN_LOCKED, SHOWN_OK
from harness.actors.relying_party import (
    SHOWN_ACCEPTED,
    SHOWN_SERVICE_DOWN,
    ServiceHabits,
    SigningService,
)
from harness.controls import InProcessCard
from harness.revocation.client import Fetcher, check_certificate
from harness.revocation.registry import Registry
from harness.revocation.server import RevocationService
from harness.scenarios.base import Ctx, ScenarioSkipped, scenario
from harness.scenarios.catalogue import DOCUMENT, login
from harness.trace.explain import explain
from harness.trace.service import explain_service


@dataclass
class World:
    """The service side of a scenario: the register, the running service, two relying
    parties (one reports any failure as a PIN error, one tells the truth) and the HTTP
    client they share (its connection kept open between checks)."""

    registry: Registry
    service: RevocationService
    fetcher: Fetcher
    careless: SigningService
    careful: SigningService
    pki: Pki


def _pki(ctx: Ctx) -> Pki:
    controls = ctx.admin
    if not isinstance(controls, InProcessCard):
        raise ScenarioSkipped(
            "the TEST revocation service signs with the card issuer's keys: only for a card "
            "this harness issues in this run (in-process or --vpcd-slot), not a replayed trace"
        )
    return controls.card.state.pki


@contextmanager
def world(ctx: Ctx) -> Iterator[World]:
    pki = _pki(ctx)
    registry = Registry(pki, ctx.clock)
    registry.register_card(pki)
    ctx.service_log = registry.log
    with RevocationService(registry) as service, Fetcher() as fetcher:
        trust = registry.authorities["sign"].cert

        def party(habits: ServiceHabits) -> SigningService:
            return SigningService(
                ctx.transport,
                trust,
                ctx.clock,
                ocsp_url=service.ocsp_url,
                crl_url=service.crl_url("sign"),
                service_habits=habits,
                rng=ctx.rng,
                fetcher=fetcher,
            )

        yield World(
            registry,
            service,
            fetcher,
            party(ServiceHabits(failure_as_pin_error=True, crl_fallback=False)),
            party(ServiceHabits()),
            pki,
        )


def submit(ctx: Ctx, app: SigningService, step: str, expected: str) -> None:
    ctx.check(step, expected, app.submit(ctx.pins["sign"], DOCUMENT).shown)


def service_verdict(ctx: Ctx, w: World) -> str:
    """The forensics' first service-side sentence, with "counters untouched" if so."""
    decrements = sum(explain(ctx.transport.records).decrements.values())
    found = explain_service(ctx.transport.records, w.registry.log.events)
    if not found:
        return "no service-side finding"
    prefix = "counters untouched" if decrements == 0 else f"{decrements} decrement(s)"
    return f"{prefix}; {found[0].sentence}"


@scenario(
    "phantom-revoked-after-move",
    "the holder moves: the signing certificate is revoked; a service shows 'PIN locked'",
    needs_admin=True,
    destructive=False,
)
def phantom_revoked_after_move(ctx: Ctx) -> None:
    with world(ctx) as w:
        submit(ctx, w.careful, "e-Tax submission before the move", SHOWN_ACCEPTED)
        ctx.clock.advance(days=3)
        revoked = w.registry.basic_fact_changed("address")
        ctx.check(
            "municipality records the move",
            "signing certificate revoked (affiliation_changed)",
            ", ".join(
                f"{e.kind}ing certificate revoked ({e.reason.name})" for e in revoked if e.reason
            ),
        )
        auth = x509.load_der_x509_certificate(w.pki.auth_cert)
        auth_ca = w.registry.authorities["auth"].cert
        ctx.check(
            "authentication certificate after the move (OCSP)",
            "good",
            check_certificate(
                auth, auth_ca, at=ctx.clock.now(), ocsp_url=w.service.ocsp_url, fetcher=w.fetcher
            ).outcome.value,
        )
        ctx.clock.advance(days=7)
        submit(
            ctx,
            w.careless,
            "e-Tax submission, service that calls any failure a PIN error",
            SHOWN_LOCKED,
        )
        ctx.expect_counters("every counter full", **ctx.full_counters())
        submit(
            ctx,
            w.careful,
            "e-Tax submission, careful service",
            "your signing certificate was revoked on 2026-04-04: apply for a new one at the "
            "municipal counter",
        )
        login(ctx, "login still works (the auth certificate is not revoked)", SHOWN_OK)
        ctx.check(
            "explained",
            "counters untouched; the signing certificate was revoked on 2026-04-04 because the "
            "holder's address changed; re-issue at the counter",
            service_verdict(ctx, w),
        )


@scenario(
    "phantom-expired",
    "the signing certificate passes the fifth birthday after issue; a service shows 'PIN locked'",
    needs_admin=True,
    destructive=False,
)
def phantom_expired(ctx: Ctx) -> None:
    with world(ctx) as w:
        submit(ctx, w.careful, "e-Tax submission while valid", SHOWN_ACCEPTED)
        cert = x509.load_der_x509_certificate(w.pki.sign_cert or b"")
        ctx.check(
            "the certificate ends on the holder's fifth birthday after issue (Japan time)",
            "2030-04-01T23:59:59+09:00",
            cert.not_valid_after_utc.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat(),
        )
        ctx.clock.advance(cert.not_valid_after_utc - ctx.clock.now() + dt.timedelta(seconds=1))
        submit(ctx, w.careless, "e-Tax submission the next day, careless service", SHOWN_LOCKED)
        ctx.expect_counters("every counter full", **ctx.full_counters())
        submit(
            ctx,
            w.careful,
            "e-Tax submission the next day, careful service",
            "your signing certificate expired on 2030-04-01: renew it at the municipal counter",
        )
        ctx.check(
            "explained",
            "counters untouched; the signing certificate expired on 2030-04-01 (the fifth "
            "birthday after issue) and was used on 2030-04-02; renew it at the counter",
            service_verdict(ctx, w),
        )


@scenario(
    "phantom-service-error",
    "the revocation service fails; a service shows 'PIN locked' for its own outage",
    needs_admin=True,
    destructive=False,
)
def phantom_service_error(ctx: Ctx) -> None:
    with world(ctx) as w:
        w.service.inject("try-later")
        submit(
            ctx, w.careless, "OCSP says tryLater: careless service (no CRL fallback)", SHOWN_LOCKED
        )
        submit(
            ctx,
            w.careful,
            "OCSP says tryLater: careful service falls back to the CRL",
            SHOWN_ACCEPTED,
        )
        ctx.clock.advance(minutes=5)
        w.service.inject("http-503")
        submit(ctx, w.careless, "service down (HTTP 503): careless service", SHOWN_LOCKED)
        submit(ctx, w.careful, "service down (HTTP 503): careful service", SHOWN_SERVICE_DOWN)
        ctx.expect_counters("every counter full", **ctx.full_counters())
        w.service.inject(None)
        ctx.clock.advance(minutes=5)
        submit(ctx, w.careless, "service back: the same card, the same password", SHOWN_ACCEPTED)
        ctx.check(
            "explained",
            "counters untouched; the revocation service failed (ocsp: answered try-later "
            "(injected fault)) at 2026-04-01T09:00:00+00:00 (2 times); the card and its "
            "certificate are fine: retry later, and fix the service's message",
            service_verdict(ctx, w),
        )
