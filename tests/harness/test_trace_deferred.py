"""Deferred trace records (``TraceLog.exchange``): the same records as the eager path, in the
same order, and no secret waiting in memory for its redaction."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from typing import Any

from emulator.pins import DEFAULT_PINS
from harness.cards import new_card
from harness.clock import FakeClock
from harness.inprocess import InProcessTransport
from harness.trace.recorder import RecordingTransport, TraceLog
from harness.trace.records import Cmd, Rsp, TraceRecord
from tests.support.secrets import leaked_forms

JPKI_AID = bytes.fromhex("D392F000260100000001")
PIN = DEFAULT_PINS["auth"].encode()

#: A session: select JPKI and the auth PIN EF, a status query, a wrong and a right VERIFY,
#: a read (the selection moves between them, so every command's app / ef / pin depends on
#: the ones before it).
SESSION = [
    bytes.fromhex("00A4040C0A") + JPKI_AID,
    bytes.fromhex("00A4020C020018"),
    bytes.fromhex("0020008000"),
    bytes.fromhex("0020008004") + b"9999",
    bytes.fromhex("0020008004") + PIN,
    bytes.fromhex("00A4020C02000A"),
    bytes.fromhex("00B0000000"),
    bytes.fromhex("00"),  # malformed: no header
]


def _without_stamps(records: list[TraceRecord]) -> list[dict[str, Any]]:
    out = []
    for rec in records:
        obj = rec.to_json()
        for stamp in ("time", "t", "latency_ms"):
            obj.pop(stamp, None)
        out.append(obj)
    return out


def _eager(log: TraceLog, apdu: bytes, rsp: bytes) -> None:
    i = log.command(apdu).i
    log.answer(i, apdu, rsp, 0.001)


def _deferred(log: TraceLog, apdu: bytes, rsp: bytes) -> None:
    log.exchange(apdu, rsp, 0.001)


def _record(step: Any) -> list[TraceRecord]:
    card = new_card()
    clock = FakeClock()
    log = TraceLog("test", card.power_on(), clock=clock)
    for n, apdu in enumerate(SESSION):
        step(log, apdu, card.transmit(apdu))
        if n == 3:
            log.note("app", "shown", pin="auth", tries_shown=2)
            clock.advance(dt.timedelta(hours=1))
        if n == 5:
            log.control("panel", "set-tries", pin="auth", tries=3)
    log.reset(card.power_on())
    step(log, SESSION[0], card.transmit(SESSION[0]))
    return log.records


def test_deferred_records_are_the_eager_ones() -> None:
    eager, deferred = _record(_eager), _record(_deferred)
    assert [type(r) for r in deferred] == [type(r) for r in eager]
    # Fingerprints are keyed per log: compare which commands share one, not the values.
    for records in (eager, deferred):
        for rec in records:
            if isinstance(rec, Cmd) and rec.fp is not None:
                object.__setattr__(rec, "fp", "same" if rec.hex.endswith("4 bytes>") else rec.fp)
                object.__setattr__(rec, "fpv", None)
    assert _without_stamps(deferred) == _without_stamps(eager)
    assert [r.seq for r in deferred] == list(range(len(deferred)))
    pins = [r.pin for r in deferred if isinstance(r, Cmd)]
    assert pins[2:5] == ["auth", "auth", "auth"]
    clocks = {r.clock for r in deferred if isinstance(r, Cmd)}
    assert len(clocks) == 2  # the note's hour moved the clock between exchanges


def test_a_command_is_stamped_before_its_answer() -> None:
    log = TraceLog("test", bytes.fromhex("3B00"))
    log.exchange(bytes.fromhex("00A4040C0A") + JPKI_AID, bytes.fromhex("9000"), 0.25)
    cmd, rsp = log.records[1:]
    assert isinstance(cmd, Cmd) and isinstance(rsp, Rsp)
    assert cmd.t is not None and rsp.t is not None
    assert abs((rsp.t - cmd.t) - 0.25) < 1e-5
    assert cmd.time is not None and rsp.time is not None
    gap = dt.datetime.fromisoformat(rsp.time) - dt.datetime.fromisoformat(cmd.time)
    assert abs(gap.total_seconds() - 0.25) < 1e-5
    assert rsp.latency_ms == 250.0


def test_no_pin_waits_in_memory_for_its_record() -> None:
    log = TraceLog("test", bytes.fromhex("3B00"))
    log.exchange(bytes.fromhex("0020008004") + PIN, bytes.fromhex("63C2"), 0.001)
    waiting = repr(log._pending)
    assert leaked_forms(waiting, PIN.decode()) == []
    assert PIN not in b"".join(v for v in log._pending[0] if isinstance(v, bytes))
    cmd = log.records[1]
    assert isinstance(cmd, Cmd) and cmd.hex == "00200080 04 <redacted 4 bytes>"
    assert cmd.fp is not None and cmd.name == "VERIFY"


def test_a_recording_transport_builds_on_reading() -> None:
    rec = RecordingTransport(InProcessTransport(new_card()))
    for apdu in SESSION[:3]:
        rec.transmit(apdu)
    assert rec.apdus == 3 and len(rec.log._pending) == 3
    assert [type(r).__name__ for r in rec.records] == ["Meta"] + ["Cmd", "Rsp"] * 3
    assert not rec.log._pending


def test_threads_recording_while_another_reads_lose_nothing() -> None:
    """An app's threads record while the test reads the trace: every exchange lands once,
    in ``seq`` order."""
    log = TraceLog("test", bytes.fromhex("3B00"))
    apdu, rsp = bytes.fromhex("00A4020C02000A"), bytes.fromhex("9000")
    per_thread, writers = 2000, 3
    done = threading.Event()
    seen: list[int] = []

    def write() -> None:
        for _ in range(per_thread):
            log.exchange(apdu, rsp, 0.0)

    def read() -> None:
        while not done.is_set():
            seen.append(len(log.records))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: a race shows at once
    try:
        reader = threading.Thread(target=read)
        reader.start()
        threads = [threading.Thread(target=write) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        reader.join()
    finally:
        sys.setswitchinterval(interval)
    records = log.records
    assert len(records) == 1 + 2 * per_thread * writers
    assert [r.seq for r in records] == list(range(len(records)))
    assert sorted(r.i for r in records if isinstance(r, Cmd)) == list(range(per_thread * writers))
    assert seen == sorted(seen)  # a reader never saw the trace shrink
