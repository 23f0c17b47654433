"""The relying party (an e-Gov style signing service), its three phantom units, and
``trace explain --service-log``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from harness.actors.apps import SHOWN_LOCKED, wrong_pin
from harness.actors.relying_party import SHOWN_ACCEPTED, ServiceHabits, SigningService
from harness.cards import new_card, shared_pki
from harness.cli import main
from harness.controls import InProcessCard
from harness.revocation.client import Outcome
from harness.scenarios.runner import run_unit
from harness.trace.recorder import RecordingTransport
from harness.trace.service import certificates_in, explain_service
from tests.harness.support import PhysicalLike, unit
from tests.revocation.conftest import Service

UNITS = ("phantom-revoked-after-move", "phantom-expired", "phantom-service-error")


def party(svc: Service, transport: RecordingTransport, careless: bool) -> SigningService:
    return SigningService(
        transport,
        svc.ca("sign"),
        svc.clock,
        ocsp_url=svc.service.ocsp_url,
        service_habits=ServiceHabits(failure_as_pin_error=careless),
    )


def test_the_careless_service_calls_a_revoked_certificate_a_locked_pin(svc: Service) -> None:
    card = InProcessCard(new_card())
    rec = RecordingTransport(card.transport, clock=svc.clock)
    assert party(svc, rec, True).submit("ABC123", b"doc").shown == SHOWN_ACCEPTED
    svc.registry.basic_fact_changed("address")
    careless, careful = party(svc, rec, True), party(svc, rec, False)
    assert careless.submit("ABC123", b"doc").shown == SHOWN_LOCKED
    assert careless.last_verdict is not None and careless.last_verdict.outcome is Outcome.REVOKED
    assert "revoked on 2026-04-01" in careful.submit("ABC123", b"doc").shown
    assert card.tries_left("sign") == 5  # the card never said no
    # The certificate the service judged is the one the trace holds, byte for byte.
    der = certificates_in(rec.records)["signing"].public_bytes(serialization.Encoding.DER)
    assert der == shared_pki().sign_cert
    found = explain_service(rec.records, svc.registry.log.events)
    assert [f.what for f in found] == ["revoked"]
    assert found[0].serial == certificates_in(rec.records)["signing"].serial_number


def test_a_wrong_password_is_the_card_s_answer_not_the_service_s(svc: Service) -> None:
    card = InProcessCard(new_card())
    rec = RecordingTransport(card.transport, clock=svc.clock)
    assert party(svc, rec, True).submit("WRONG1", b"doc").shown == wrong_pin(4)
    assert [e for e in svc.registry.log.events if e.type == "decision"] == []


@pytest.mark.parametrize("name", UNITS)
def test_unit_writes_its_service_log_and_explain_reads_it(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = run_unit(unit(name), trace_dir=tmp_path)
    assert result.ok, [s for s in result.steps if not s.ok]
    trace, log = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.service.jsonl"
    assert main(["trace", "explain", str(trace), "--service-log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "no retry-counter decrement" in out
    service = [line for line in out.splitlines() if line.startswith("service: ")]
    assert service and all(line.startswith("service: counters untouched; ") for line in service)
    want = {
        "phantom-revoked-after-move": "the signing certificate was revoked on 2026-04-04 because "
        "the holder's address changed; re-issue at the counter",
        "phantom-expired": "the signing certificate expired on 2030-04-01 (the fifth birthday "
        "after issue) and was used on 2030-04-02; renew it at the counter",
        "phantom-service-error": "the revocation service failed (ocsp: HTTP 503 (injected fault))",
    }[name]
    assert any(want in line for line in service), service
    # Without the service log, explain says what the card saw and nothing about the service.
    assert main(["trace", "explain", str(trace)]) == 0
    assert "service:" not in capsys.readouterr().out


def test_a_bad_service_log_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_unit(unit("phantom-expired"), trace_dir=tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "meta", "format": "something else", "version": 1}\n', encoding="utf-8")
    code = main(
        ["trace", "explain", str(tmp_path / "phantom-expired.jsonl"), "--service-log", str(bad)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "line 1" in err and "Traceback" not in err


def test_units_are_refused_on_a_reader_without_controls() -> None:
    result, _ = run_unit(unit("phantom-expired"), lambda _: (PhysicalLike(new_card()), None))
    assert result.skipped is not None and "test controls" in result.skipped


def test_replaying_a_unit_says_why_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_unit(unit("phantom-expired"), trace_dir=tmp_path)
    assert main(["trace", "replay", str(tmp_path / "phantom-expired.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "cannot replay" in out and "issuer's keys" in out and "diverged" not in out
