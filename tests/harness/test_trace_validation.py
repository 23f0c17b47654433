"""Malformed, truncated and binary traces: every ``myna-hil trace`` action answers with one
line on stderr (file, line, field) or a normal result, never a traceback, never a value."""

from __future__ import annotations

import functools
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.trace import golden
from harness.trace.recorder import TraceFormatError, read_trace
from harness.trace.records import Meta, Note
from tests.harness.support import record

GOLDEN = ("lockout-auth", "phantom-tearing", "phantom-status-quirk", "kiosk-reset-sign")
ACTIONS = ("show", "explain", "replay")


@functools.cache
def sources() -> tuple[tuple[str, ...], ...]:
    """Traces to mutate, as lines: golden ones, and an unredacted recording that replays."""
    traces = [golden.golden_path(n).read_text(encoding="utf-8").splitlines() for n in GOLDEN]
    traces.append([json.dumps(r.to_json()) for r in record("lockout-juki", redact=False)])
    return tuple(tuple(t) for t in traces)


@functools.cache
def apdu_values() -> frozenset[str]:
    """Every APDU hex of the sources long enough to matter: none may appear on stderr."""
    out = set()
    for lines in sources():
        for line in lines:
            value = json.loads(line).get("hex", "")
            if len(value) >= 8:
                out.add(value)
    return frozenset(out)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(code: int, out: str, err: str, action: str) -> None:
    """Exit 0 (or 1: a replay that diverged) with nothing on stderr, or exit 2 and one line."""
    assert "Traceback" not in err and "Traceback" not in out
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("myna-hil: error: "), err
        assert not any(v in err for v in apdu_values()), "an APDU value reached stderr"
    else:
        assert code == 0 or (code == 1 and action == "replay"), (code, out, err)
        assert err == "", err


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


def _mutate(
    lines: list[bytes], rnd: random.Random, kind: str, value: Any, garbage: bytes
) -> list[bytes]:
    n = rnd.randrange(len(lines))
    if kind in ("delete", "retype", "type"):
        try:
            rec = json.loads(lines[n])
        except ValueError:  # already garbage
            return lines
        if not isinstance(rec, dict):
            return lines
        keys = sorted(rec)
        if kind == "delete" and keys:
            del rec[rnd.choice(keys)]
        elif kind == "retype" and keys:
            rec[rnd.choice(keys)] = value
        elif kind == "type":
            rec["type"] = rnd.choice(["meta", "cmd", "rsp", "lost", "reset", "note", 7, None])
        lines[n] = json.dumps(rec, ensure_ascii=False).encode("utf-8")
    elif kind == "replace":
        lines[n] = json.dumps(value).encode("utf-8")
    elif kind == "bytes":
        lines[n] = garbage
    elif kind == "insert":
        at = rnd.randrange(len(lines[n]) + 1)
        lines[n] = lines[n][:at] + garbage + lines[n][at:]
    elif kind == "truncate":
        blob = b"\n".join(lines)
        lines = blob[: rnd.randrange(len(blob) + 1)].split(b"\n") or [b""]
    elif kind == "swap":
        m = rnd.randrange(len(lines))
        lines[n], lines[m] = lines[m], lines[n]
    elif kind == "duplicate":
        lines.insert(n, lines[rnd.randrange(len(lines))])
    return lines


MUTATION = st.tuples(
    st.sampled_from(
        ["delete", "retype", "type", "replace", "bytes", "insert", "truncate", "swap", "duplicate"]
    ),
    JSON_VALUES,
    st.binary(max_size=24),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    source=st.integers(0, len(GOLDEN)),
    seed=st.integers(0, 2**32),
    mutations=st.lists(MUTATION, min_size=1, max_size=3),
)
def test_mutated_traces_give_a_result_or_one_line(
    capsys: pytest.CaptureFixture[str],
    source: int,
    seed: int,
    mutations: list[tuple[str, Any, bytes]],
) -> None:
    rnd = random.Random(seed)
    lines = [line.encode("utf-8") for line in sources()[source]]
    for kind, value, garbage in mutations:
        lines = _mutate(lines, rnd, kind, value, garbage)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        for action in ACTIONS:
            code, out, err = run(capsys, "trace", action, str(path))
            event(f"trace {action}: exit {code}")  # --hypothesis-show-statistics
            assert_clean(code, out, err, action)


def _write(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in sources()[0]]


@pytest.mark.parametrize(
    ("line", "field", "value", "message"),
    [
        (3, "sw", "90", "line 3: field 'sw' must be 4 hex digits"),
        (3, "sw", 36864, "line 3: field 'sw' must be 4 hex digits"),
        (2, "hex", "00200080 04 \x1b[2J31323334", "line 2: field 'hex' must be APDU hex"),
        (2, "hex", ["00A4"], "line 2: field 'hex' must be APDU hex"),
        (2, "i", "0", "line 2: field 'i' must be a non-negative integer"),
        (2, "i", True, "line 2: field 'i' must be a non-negative integer"),
        (2, "i", None, "line 2: cmd record: field 'i' is missing"),
        (1, "version", 99, "line 1: trace version 99 is too new"),
        (1, "atr", "3BX", "line 1: field 'atr' must be an even number of hex digits"),
        (1, "type", "cmd", "line 1: not a myna-hil-trace file (no meta record first)"),
        (2, "type", "meta", "line 2: a meta record may only be the first line"),
        (2, "type", "bogus", "line 2: field 'type' must be one of"),
        (2, "ef", "18", "line 2: field 'ef' must be 4 hex digits"),
    ],
)
@pytest.mark.parametrize("action", ACTIONS)
def test_bad_field_names_line_and_field_not_value(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    action: str,
    line: int,
    field: str,
    value: Any,
    message: str,
) -> None:
    records = _records()
    if value is None:
        del records[line - 1][field]
    else:
        records[line - 1][field] = value
    path = _write(tmp_path, records)
    code, _, err = run(capsys, "trace", action, str(path))
    assert code == 2
    assert f"{path} {message}" in err and len(err.splitlines()) == 1
    assert "31323334" not in err and "\x1b" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\n\n  \n", "empty file"),
        (b"\x7fELF\x02\x01\x01\x00\xff\xfe", "line 1: not UTF-8 text"),
        (b'{"type": "meta"}\n\xff\xfe\n', "line 2: not UTF-8 text"),
        (b"\x00\x00\x00", "line 1: not JSON"),
        (b"[" * 100_000, "line 1: not JSON"),
        (b"1" * 5000, "line 1: not JSON"),
        (b"[1, 2]\n", "line 1: not a JSON object"),
        (b'{"no": "type"}\n', "line 1: field 'type' is missing"),
    ],
)
def test_binary_empty_and_non_json_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_bytes(content)
    for action in ACTIONS:
        code, _, err = run(capsys, "trace", action, str(path))
        assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_directory_and_missing_file_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for target in (tmp_path, tmp_path / "missing.jsonl"):
        code, _, err = run(capsys, "trace", "show", str(target))
        assert code == 2 and err.startswith("myna-hil: error: cannot read")
        assert len(err.splitlines()) == 1


def test_note_fields_cannot_drive_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = _records()
    records.insert(1, {"type": "note", "actor": "app", "event": "shown", "text": "\x1b[31mred"})
    code, out, _ = run(capsys, "trace", "show", str(_write(tmp_path, records)))
    assert code == 0 and "\x1b" not in out and "\\x1b[31mred" in out


def test_line_separators_inside_strings_are_not_line_breaks(tmp_path: Path) -> None:
    records = _records()
    records.insert(1, {"type": "note", "actor": "app", "event": "shown", "text": "a\u2028b"})
    path = tmp_path / "trace.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    note = read_trace(path)[1]
    assert isinstance(note, Note) and note.fields["text"] == "a\u2028b"


def test_every_golden_trace_still_loads() -> None:
    for path in sorted(golden.GOLDEN_DIR.glob("*.jsonl")):
        assert isinstance(read_trace(path)[0], Meta)


def test_unredacted_replay_divergence_shows_no_pin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = [json.loads(line) for line in sources()[-1]]
    verify = next(r for r in records if r.get("type") == "cmd" and r.get("name") == "VERIFY")
    data = verify["hex"][10:]
    verify["hex"] = verify["hex"][:10] + "39" * (len(data) // 2)  # another (wrong) value
    code, out, err = run(capsys, "trace", "replay", str(_write(tmp_path, records)))
    assert code == 1 and err == ""
    assert "diverged" in out and "<redacted" in out and data not in out


def test_trace_format_error_is_a_value_error() -> None:
    assert issubclass(TraceFormatError, ValueError)


def test_a_huge_bad_hex_field_is_rejected_without_backtracking(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = _records()
    records[1]["hex"] = "0 " * 50_000 + "Z"
    code, _, err = run(capsys, "trace", "show", str(_write(tmp_path, records)))
    assert code == 2 and "line 2: field 'hex' must be APDU hex" in err
