"""Typed trace records: the JSON form is unchanged, typed fields come from the header, and the
reader brings older versions up to date (or refuses them in one line)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from harness.cards import new_card
from harness.cli import main
from harness.inprocess import InProcessTransport
from harness.trace import golden, validate
from harness.trace.decode import CommandKind
from harness.trace.recorder import (
    TRACE_VERSION,
    RecordingTransport,
    TraceFormatError,
    TraceLog,
    dumps,
    read_trace,
    write_trace,
)
from harness.trace.records import (
    RECORD_TYPES,
    Cmd,
    Control,
    Lost,
    Meta,
    Note,
    Reset,
    Rsp,
    TraceRecord,
    record_from_json,
)
from tests.harness.support import record

GOLDEN_FILES = sorted(golden.GOLDEN_DIR.glob("*.jsonl"))


def _cmds(records: list[TraceRecord]) -> list[Cmd]:
    return [r for r in records if isinstance(r, Cmd)]


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_every_golden_line_round_trips_byte_identical(path: Path, tmp_path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        rec = record_from_json(json.loads(line))
        assert json.dumps(rec.to_json(), ensure_ascii=False) == line
    records = read_trace(path)
    assert dumps(records) == text
    assert write_trace(tmp_path / path.name, records).read_bytes() == path.read_bytes()


def test_golden_files_exist() -> None:
    assert len(GOLDEN_FILES) >= 20


@pytest.mark.parametrize("redact", [True, False])
def test_recordings_round_trip(redact: bool, tmp_path: Path) -> None:
    """Every record type a run writes (notes, fingerprints and their variants, power loss,
    reset) reads back equal and writes again byte for byte."""
    kinds: set[type] = set()
    variants = False
    for name in ("phantom-tearing", "phantom-app-retry"):
        first = write_trace(tmp_path / f"{name}.jsonl", record(name, redact=redact))
        records = read_trace(first)
        kinds |= {type(r) for r in records}
        variants |= any(isinstance(r, Cmd) and r.fp and r.fpv for r in records)
        again = write_trace(tmp_path / f"{name}-again.jsonl", records)
        assert again.read_bytes() == first.read_bytes()
        assert read_trace(again) == records
    assert kinds == {Meta, Cmd, Rsp, Lost, Reset, Note} and variants


def test_recorded_commands_have_typed_fields() -> None:
    rec = RecordingTransport(InProcessTransport(new_card()))
    for apdu in (
        "00A4040C0AD392F000260100000001",
        "00A4020C020018",
        "00200080",
        "0020008004" + "31323334",
        "00A4020C020006",
        "00B0000010",
    ):
        rec.transmit(bytes.fromhex(apdu))
    select_app, select_ef, status, verify, _, read = _cmds(rec.records)
    assert (select_app.kind, select_app.ins, select_app.p1, select_app.p2) == (
        CommandKind.SELECT,
        0xA4,
        0x04,
        0x0C,
    )
    assert (select_app.app, select_app.ef, select_app.pin) == (None, None, None)
    assert (select_ef.kind, select_ef.p1, select_ef.app, select_ef.ef) == (
        CommandKind.SELECT,
        0x02,
        "jpki",
        None,
    )
    assert (status.kind, status.ins, status.p2, status.app, status.ef, status.pin) == (
        CommandKind.VERIFY_STATUS,
        0x20,
        0x80,
        "jpki",
        0x0018,
        "auth",
    )
    assert status.fp is None
    assert (verify.kind, verify.cla, verify.ins, verify.p1, verify.p2) == (
        CommandKind.VERIFY,
        0x00,
        0x20,
        0x00,
        0x80,
    )
    assert (verify.app, verify.ef, verify.pin) == ("jpki", 0x0018, "auth")
    assert verify.hex == "00200080 04 <redacted 4 bytes>" and verify.fp
    assert (read.kind, read.ins, read.app, read.ef, read.pin) == (
        CommandKind.READ,
        0xB0,
        "jpki",
        0x0006,
        None,
    )
    assert [c.i for c in _cmds(rec.records)] == list(range(6))


def test_golden_commands_have_typed_fields() -> None:
    by_hex = {c.hex: c for p in GOLDEN_FILES for c in _cmds(read_trace(p))}
    reset = by_hex["002C029C 04 <redacted 4 bytes>"]
    assert (reset.kind, reset.ins, reset.p1, reset.p2, reset.app, reset.ef, reset.pin) == (
        CommandKind.RESET_NEW_VALUE,
        0x2C,
        0x02,
        0x9C,
        "juki",
        0x001C,
        "juki",
    )
    juki = by_hex["00200080 04 <redacted 4 bytes>"]
    assert (juki.kind, juki.ins) == (CommandKind.VERIFY, 0x20)
    challenge = by_hex["0084000008"]
    assert (challenge.kind, challenge.ins, challenge.proprietary) == (
        CommandKind.OTHER,
        0x84,
        False,
    )
    cryptogram = by_hex["0082000010<cryptogram>"]  # a golden file's placeholder
    assert (cryptogram.ins, cryptogram.kind) == (0x82, CommandKind.OTHER)
    sign = next(c for h, c in by_hex.items() if h.startswith("802A"))
    assert (sign.cla, sign.ins, sign.p1, sign.p2, sign.proprietary) == (
        0x80,
        0x2A,
        0x00,
        0x80,
        True,
    )
    assert (sign.app, sign.ef, sign.pin) == ("jpki", 0x0017, None)


@pytest.mark.parametrize(
    ("hex_text", "kind", "header"),
    [
        ("00240198 04 <redacted 4 bytes>", CommandKind.CHANGE, (0x00, 0x24, 0x01, 0x98)),
        ("8032009C 04 <redacted 4 bytes>", CommandKind.CHANGE, (0x80, 0x32, 0x00, 0x9C)),
        ("002C0398", CommandKind.RESET_UNBLOCK, (0x00, 0x2C, 0x03, 0x98)),
        ("", CommandKind.MALFORMED, (None, None, None, None)),
        ("00 20", CommandKind.MALFORMED, (None, None, None, None)),
    ],
)
def test_kind_and_header_follow_the_hex(
    hex_text: str, kind: CommandKind, header: tuple[int | None, ...]
) -> None:
    cmd = Cmd(i=0, hex=hex_text, name="renamed")
    assert cmd.kind is kind and (cmd.cla, cmd.ins, cmd.p1, cmd.p2) == header
    other = dataclasses.replace(cmd, hex="00B0000000")  # derived fields follow the hex
    assert (other.kind, other.ins) == (CommandKind.READ, 0xB0)


def test_records_are_frozen_and_slotted() -> None:
    cmd = Cmd(i=1, hex="00200080")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cmd.i = 2  # type: ignore[misc]
    for cls in RECORD_TYPES.values():
        assert "__slots__" in vars(cls)
        assert dataclasses.is_dataclass(cls)


def test_notes_keep_their_fields_in_order_and_type_pin_and_tries() -> None:
    obj = {
        "seq": 9,
        "type": "note",
        "actor": "app",
        "event": "pin-status",
        "pin": "auth",
        "app": "jpki",
        "tries_shown": 0,
        "clock": "2026-04-01T09:00:00+00:00",
    }
    note = record_from_json(obj)
    assert isinstance(note, Note)
    assert (note.actor, note.event, note.pin, note.tries_shown) == ("app", "pin-status", "auth", 0)
    assert list(note.fields) == ["pin", "app", "tries_shown"]
    assert note.to_json() == obj and list(note.to_json()) == list(obj)
    assert Note(actor="a", event="e").pin is None
    assert Note(actor="a", event="e", fields={"tries_shown": True}).tries_shown is None


def test_meta_extras_and_a_newer_writers_fields_are_kept() -> None:
    rec = RecordingTransport(
        InProcessTransport(new_card()),
        meta={"scenario": "s", "profile": "p", "hil": True, "reader": "r"},
    )
    meta = rec.records[0]
    assert isinstance(meta, Meta)
    assert (meta.scenario, meta.profile, dict(meta.extra)) == (
        "s",
        "p",
        {"hil": True, "reader": "r"},
    )
    assert list(meta.to_json()) == [
        "seq",
        "type",
        "format",
        "version",
        "transport",
        "atr",
        "redacted",
        "fingerprint",
        "scenario",
        "profile",
        "hil",
        "reader",
        "time",
        "t",
    ]
    obj: dict[str, Any] = {
        "seq": 3,
        "type": "rsp",
        "i": 1,
        "hex": "9000",
        "sw": "9000",
        "x-newer": [1, 2],
        "clock": "c",
    }
    rsp = record_from_json(obj)
    assert isinstance(rsp, Rsp) and rsp.sw == 0x9000 and rsp.extra == {"x-newer": [1, 2]}
    assert rsp.to_json() == obj and list(rsp.to_json()) == list(obj)


def test_controls_keep_the_panels_json_form(tmp_path: Path) -> None:
    obj = {
        "seq": 4,
        "type": "control",
        "actor": "panel",
        "action": "set-tries",
        "pin": "auth",
        "tries": 1,
        "time": "2026-04-01T09:00:00+00:00",
        "t": 0.5,
    }
    control = record_from_json(obj)
    assert isinstance(control, Control) and RECORD_TYPES["control"] is Control
    assert (control.actor, control.action, control.pin, control.tries) == (
        "panel",
        "set-tries",
        "auth",
        1,
    )
    assert control.to_json() == obj and list(control.to_json()) == list(obj)
    assert validate.check_record(obj, first=False) is None
    log = TraceLog("test", bytes.fromhex("3B00"))
    log.control("panel", "new-card")
    assert list(log.records[-1].to_json()) == ["seq", "type", "actor", "action", "time", "t"]
    path = write_trace(tmp_path / "t.jsonl", log.records)
    assert read_trace(path) == log.records
    assert dumps(read_trace(path)) == path.read_text(encoding="utf-8")


def test_a_trimmed_log_keeps_its_meta_and_counts_on() -> None:
    log = TraceLog("test", bytes.fromhex("3B00"))
    for n in range(10):
        log.note("tester", f"e{n}")
    log.trim(3)
    assert isinstance(log.records[0], Meta)
    assert [r.seq for r in log.records] == [0, 8, 9, 10]
    assert log.note("tester", "after").seq == 11


# --- versions and migrations -----------------------------------------------------------------


def _with_version(tmp_path: Path, version: int) -> Path:
    lines = GOLDEN_FILES[0].read_text(encoding="utf-8").splitlines()
    meta = json.loads(lines[0])
    meta["version"] = version
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join([json.dumps(meta), *lines[1:]]) + "\n", encoding="utf-8")
    return path


def test_this_version_reads_without_migration() -> None:
    assert validate.TRACE_VERSION == TRACE_VERSION == 1
    assert all(v < TRACE_VERSION for v in validate.MIGRATIONS)
    meta = read_trace(GOLDEN_FILES[0])[0]
    assert isinstance(meta, Meta) and meta.version == TRACE_VERSION


def test_an_older_supported_version_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader at version 3 with migrations 1 -> 2 -> 3 reads a version-1 file."""
    seen: list[tuple[int, str]] = []

    def step(version: int) -> Any:
        def migrate(rec: dict[str, Any]) -> dict[str, Any]:
            seen.append((version, rec["type"]))
            if rec["type"] == "rsp" and version == 1:  # e.g. a field renamed in version 2
                rec["sw_text"] = rec.pop("sw_name")
            if rec["type"] == "rsp" and version == 2:
                rec["sw_name"] = rec.pop("sw_text")
            return rec

        return migrate

    monkeypatch.setattr(validate, "TRACE_VERSION", 3)
    monkeypatch.setattr(validate, "MIGRATIONS", {1: step(1), 2: step(2)})
    path = _with_version(tmp_path, 1)
    records = read_trace(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(seen) == 2 * len(lines) and seen[0] == (1, "meta") and seen[1] == (2, "meta")
    meta = records[0]
    assert isinstance(meta, Meta) and meta.version == 3
    rsp = next(r for r in records if isinstance(r, Rsp))
    assert rsp.sw_name == "OK" and not rsp.extra


def test_a_version_no_migration_reaches_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "TRACE_VERSION", 3)
    monkeypatch.setattr(validate, "MIGRATIONS", {2: lambda rec: rec})
    path = _with_version(tmp_path, 1)
    with pytest.raises(
        TraceFormatError,
        match=r"line 1: trace version 1 is too old \(this "
        r"reader: 2 to 3\)",
    ):
        read_trace(path)


def test_a_line_too_broken_to_migrate_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def strict(rec: dict[str, Any]) -> dict[str, Any]:
        rec["event"] = rec["event"].upper() if rec["type"] == "note" else rec.get("event")
        return rec

    monkeypatch.setattr(validate, "TRACE_VERSION", 2)
    monkeypatch.setattr(validate, "MIGRATIONS", {1: strict})
    path = _with_version(tmp_path, 1)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(1, json.dumps({"type": "note", "actor": "app", "event": 7}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(
        TraceFormatError,
        match=r"line 2: cannot bring this version-1 record "
        r"up to version 2$",
    ):
        read_trace(path)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (TRACE_VERSION + 1, f"line 1: trace version {TRACE_VERSION + 1} is too new"),
        (0, "line 1: trace version 0 is too old"),
    ],
)
@pytest.mark.parametrize("action", ["show", "explain", "replay"])
def test_an_unknown_version_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, version: int, message: str, action: str
) -> None:
    path = _with_version(tmp_path, version)
    assert main(["trace", action, str(path)]) == 2
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and f"{path} {message}" in err, err
