"""Recording (redaction, fingerprints), reading and replaying traces."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import pytest

from harness.cards import new_card
from harness.clock import EPOCH, FakeClock
from harness.controls import ReplayControls
from harness.inprocess import InProcessTransport
from harness.scenarios.runner import run_unit
from harness.trace import (
    Cmd,
    CommandKind,
    Lost,
    Meta,
    RecordingTransport,
    ReplayDivergence,
    ReplayTransport,
    Reset,
    Rsp,
    TraceFormatError,
    golden,
    read_trace,
)
from harness.trace.fingerprint import Fingerprinter
from harness.transport import CardRemovedError
from tests.harness.support import PhysicalLike, record, unit
from tests.support.secrets import leaked_forms

PHANTOMS = ["phantom-tearing", "phantom-app-retry", "phantom-status-quirk"]
VERIFY_1234 = "002000800431323334"


def _verify_once(redact: bool) -> RecordingTransport:
    rec = RecordingTransport(InProcessTransport(new_card()), redact=redact)
    rec.transmit(bytes.fromhex("00A4040C0AD392F000260100000001"))
    rec.transmit(bytes.fromhex("00A4020C020018"))
    rec.transmit(bytes.fromhex(VERIFY_1234))
    return rec


def test_secrets_are_redacted_by_default(tmp_path: Path) -> None:
    rec = _verify_once(redact=True)
    text = rec.save(tmp_path / "t.jsonl").read_text()
    assert leaked_forms(text, "1234") == []
    cmd = next(r for r in rec.records if isinstance(r, Cmd) and r.kind is CommandKind.VERIFY)
    assert cmd.name == "VERIFY" and cmd.hex == "00200080 04 <redacted 4 bytes>"
    assert (cmd.app, cmd.ef, cmd.pin) == ("jpki", 0x0018, "auth")
    assert cmd.to_json()["ef"] == "0018"
    assert cmd.fp is not None and len(cmd.fp) == 16


def test_unredacted_on_request_but_never_for_a_physical_card() -> None:
    rec = _verify_once(redact=False)
    assert any(isinstance(r, Cmd) and r.hex == VERIFY_1234.upper() for r in rec.records)

    phys = RecordingTransport(PhysicalLike(new_card()), redact=False)
    meta = phys.records[0]
    assert phys.redact and isinstance(meta, Meta) and meta.redacted is True


def test_record_fields() -> None:
    rec = _verify_once(redact=True)
    meta, rsp = rec.records[0], rec.records[-1]
    assert isinstance(meta, Meta) and meta.format == "myna-hil-trace"
    assert meta.to_json()["atr"].startswith("3B")
    assert isinstance(rsp, Rsp) and rsp.sw == 0x9000 and rsp.to_json()["sw"] == "9000"
    assert rsp.latency_ms is not None and rsp.latency_ms >= 0
    assert {"time", "t", "seq"} <= rsp.to_json().keys()


def test_stamps_follow_the_wall_clock_and_the_scenario_clock() -> None:
    """The recorder reuses stamp text while a clock stands still: it must never go stale."""
    clock = FakeClock()
    before = dt.datetime.now(dt.UTC)
    rec = RecordingTransport(InProcessTransport(new_card()), clock=clock)
    rec.transmit(bytes.fromhex("00A4040C0AD392F000260100000001"))
    clock.advance(minutes=5)
    rec.transmit(bytes.fromhex("00A4020C020018"))
    time.sleep(0.002)
    rec.note("tester", "looked")
    after = dt.datetime.now(dt.UTC)
    walls = [dt.datetime.fromisoformat(r.time or "") for r in rec.records]
    assert all(w.utcoffset() == dt.timedelta(0) for w in walls)
    assert walls == sorted(walls) and before <= walls[0] and walls[-1] <= after
    assert walls[-1] - walls[-2] >= dt.timedelta(milliseconds=2)
    assert all(len(r.time or "") == len("2026-04-01T09:00:00.000000+00:00") for r in rec.records)
    clocks = [r.clock for r in rec.records]
    start = EPOCH.isoformat()
    later = (EPOCH + dt.timedelta(minutes=5)).isoformat()
    assert clocks == [start, start, start, later, later, later]


def test_fingerprints_keep_equality_not_values() -> None:
    a, b = Fingerprinter(), Fingerprinter()
    assert a.fp(b"1234") == a.fp(b"1234") != a.fp(b"1235")
    assert a.fp(b"1234") != b.fp(b"1234")  # per-trace keys: unrelated across traces
    assert a.variants(b"abc123")["case"] == a.fp(b"ABC123")
    assert a.variants("１２３４".encode())["width"] == a.fp(b"1234")
    assert a.variants(b"1234\n")["space"] == a.fp(b"1234")
    assert a.variants(b"1234") == {}
    assert "key" in repr(a) and a.fp(b"x") not in repr(a)


def test_the_fingerprint_key_is_not_in_the_trace(tmp_path: Path) -> None:
    rec = _verify_once(redact=True)
    key = rec.log._fingerprints._Fingerprinter__key  # type: ignore[attr-defined]
    assert key.hex() not in rec.save(tmp_path / "t.jsonl").read_text()


def test_power_loss_is_recorded_and_reraised() -> None:
    card = new_card()
    rec = RecordingTransport(InProcessTransport(card))
    rec.transmit(bytes.fromhex("00A4040C0AD392F000260100000001"))
    rec.transmit(bytes.fromhex("00A4020C020018"))
    card.faults.tear_after_decrement = 1
    with pytest.raises(CardRemovedError):
        rec.transmit(bytes.fromhex(VERIFY_1234))
    rec.reset()
    assert [type(r) for r in rec.records[-2:]] == [Lost, Reset]
    assert [r.to_json()["type"] for r in rec.records[-2:]] == ["lost", "reset"]


@pytest.mark.parametrize("name", PHANTOMS)
@pytest.mark.parametrize("redact", [True, False])
def test_replay_of_a_recorded_run_matches(name: str, redact: bool, tmp_path: Path) -> None:
    record(name, redact=redact, trace_dir=tmp_path)
    records = read_trace(tmp_path / f"{name}.jsonl")
    replay = ReplayTransport(records)
    result, _ = run_unit(unit(name), lambda _: (replay, ReplayControls()))
    assert result.ok and result.error is None
    replay.check_finished()
    assert replay.replayed == result.apdus


def test_replay_reports_the_first_divergence() -> None:
    records = record("phantom-app-retry")
    # Tamper: the app now sends a 7-byte password where the trace has 6 bytes.
    n, target = next(
        (n, r) for n, r in enumerate(records) if isinstance(r, Cmd) and r.kind is CommandKind.VERIFY
    )
    assert target.name == "VERIFY"
    records[n] = dataclasses.replace(
        target, hex=target.hex.replace("06 <redacted 6 bytes>", "07 <redacted 7 bytes>")
    )
    replay = ReplayTransport(records)
    result, _ = run_unit(unit("phantom-app-retry"), lambda _: (replay, ReplayControls()))
    assert result.error is not None
    assert f"diverged at APDU #{target.i}" in result.error
    assert "07 <redacted 7 bytes>" in result.error and "06 <redacted 6 bytes>" in result.error


def test_replay_of_another_scenario_diverges() -> None:
    replay = ReplayTransport(record("lockout-helper"))
    result, _ = run_unit(unit("lockout-juki"), lambda _: (replay, ReplayControls()))
    assert result.error and "diverged at APDU #0" in result.error


def test_replay_notices_a_run_that_stops_early() -> None:
    replay = ReplayTransport(record("lockout-juki"))
    replay.transmit(bytes.fromhex("00A4040C0AD3921000310001010401"))
    with pytest.raises(ReplayDivergence) as e:
        replay.check_finished()
    assert "end of run" in str(e.value)


def test_read_trace_rejects_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text("{not json\n")
    with pytest.raises(TraceFormatError, match=r"bad\.jsonl line 1: not JSON"):
        read_trace(p)
    p.write_text(json.dumps({"type": "cmd"}) + "\n")
    with pytest.raises(TraceFormatError, match="no meta"):
        read_trace(p)
    with pytest.raises(TraceFormatError, match="cannot read"):
        read_trace(tmp_path / "missing.jsonl")


def test_a_golden_trace_cannot_be_replayed_and_says_why() -> None:
    replay = ReplayTransport(golden.normalise(record("card-info")))
    result, _ = run_unit(unit("card-info"), lambda _: (replay, ReplayControls()))
    assert result.error and "normalised" in result.error
