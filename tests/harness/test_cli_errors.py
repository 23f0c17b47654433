"""One line and a non-zero exit instead of a traceback or a hang: ``run --json`` that cannot be
written, an ASCII-only terminal, ``soak`` on slots pcscd does not have, and sessions reading a
card that answers ``9000`` with no data."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.grammar import SW
from harness.cli import main
from harness.cli import output as cli_output
from harness.errors import ApduError, ProtocolError
from harness.sessions import JpkiSession, TextSession
from harness.sessions.base import MAX_EF_SIZE, Session
from harness.transport import Transport

MYNA_HIL = Path(sys.executable).with_name("myna-hil")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- run --json ------------------------------------------------------------------------------


def test_run_json_to_a_directory_stops_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "run", "--json", str(tmp_path), "lockout-juki")
    assert code == 2 and out == ""  # refused before any scenario ran
    assert one_error_line(err) == f"myna-hil: error: --json {tmp_path}: is a directory, not a file"


def test_run_json_under_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "run", "--json", str(tmp_path / "file" / "r.json"), "card-info")
    assert code == 2 and "cannot write" in one_error_line(err)


def test_run_json_on_a_full_disk_is_one_line_and_leaves_no_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full)
    target = tmp_path / "results.json"
    code, _, err = run(capsys, "run", "--json", str(target), "card-info")
    assert code == 2
    assert one_error_line(err) == (
        f"myna-hil: error: --json {target}: cannot write: {os.strerror(errno.ENOSPC)}"
    )
    assert list(tmp_path.iterdir()) == []  # neither a truncated file nor the temporary one


def test_run_json_still_writes_results(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out" / "results.json"
    code, _, err = run(capsys, "run", "--json", str(target), "card-info")
    assert code == 0 and err == ""
    assert json.loads(target.read_text())["ok"] is True
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


# --- terminals that cannot show ✓ / ✗ ---------------------------------------------------------


@pytest.mark.skipif(not MYNA_HIL.exists(), reason="myna-hil is not installed next to python")
def test_ascii_terminal_gets_ascii_marks() -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [str(MYNA_HIL), "run", "lockout-juki"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    out = proc.stdout.decode("ascii")  # strictly ASCII, or this fails
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert "ok lockout-juki" in out and "2 scenario units: 2 passed - " in out


def test_ascii_stream_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", stream)
    assert main(["run", "lockout-juki"]) == 0
    stream.flush()
    out = raw.getvalue().decode("ascii")
    assert "ok lockout-juki" in out and "\u2713" not in out


def test_marks_follow_the_stream_encoding() -> None:
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    assert cli_output.marks(utf8) == ("\u2713", "\u2717")
    assert cli_output.marks(latin) == ("ok", "FAIL")


# --- soak on slots that do not exist ----------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--tearing", "1"]])
def test_soak_on_a_missing_slot_is_quick_and_one_line(
    capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    # Slot 98 is no reader pcscd has (and without pcscd the answer is one line as well).
    start = time.monotonic()
    status = main(["soak", "--slots", "98", "--seconds", "1", *extra])
    err = capsys.readouterr().err
    assert status == 2
    line = one_error_line(err)
    assert line.startswith("myna-hil soak: error: ")
    assert "'Virtual PCD 49 00 00'" in line or "pcscd" in line
    assert time.monotonic() - start < 10


def test_soak_without_pc_sc_support_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "smartcard", None)  # import fails
    assert main(["soak", "--slots", "98", "--seconds", "1"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "myna-hil soak: error: soak needs pyscard: pip install 'myna-hil[pcsc]'"
    )


# --- bounded reads ------------------------------------------------------------------------------


class EndlessCard(Transport):
    """Answers every command with *answer*: ``9000`` and no data, forever (or a data chunk)."""

    name = "endless"
    physical = False

    def __init__(self, answer: bytes = b"\x90\x00", der: bool = False) -> None:
        self.answer = answer
        self.der = der
        self.reads = 0

    @property
    def atr(self) -> bytes:
        return b"\x3b\x00"

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xB0:
            self.reads += 1
            if self.der and apdu[2:4] == b"\x00\x00":
                return b"\x30\x82\x04\x00\x90\x00"  # a header declaring 1024 bytes
        return self.answer

    def reset(self) -> bytes:
        return self.atr


def test_read_ef_stops_on_an_empty_9000() -> None:
    card = EndlessCard()
    with pytest.raises(ProtocolError, match="READ BINARY EF 0001: protocol error: no data"):
        Session(card, select=False).read_ef(0x0001)
    assert card.reads == 1
    with pytest.raises(ProtocolError, match="no data at offset 0"):
        Session(card, select=False).read_ef(0x0001, 10)


def test_read_der_stops_on_an_empty_9000() -> None:
    card = EndlessCard(der=True)
    with pytest.raises(ProtocolError, match="no data at offset 4") as e:
        JpkiSession(card, select=False).read_der(0x000A)
    assert isinstance(e.value, ApduError) and e.value.sw == SW.OK
    assert card.reads == 2


def test_read_ef_of_a_file_without_end_is_capped() -> None:
    card = EndlessCard(bytes(0x100) + b"\x90\x00")
    with pytest.raises(ProtocolError, match=f"past {MAX_EF_SIZE} bytes"):
        TextSession(card, select=False).read_ef(0x0001)
    assert card.reads == MAX_EF_SIZE // 0x100


def test_read_ef_refuses_more_data_than_asked() -> None:
    card = EndlessCard(bytes(8) + b"\x90\x00")
    with pytest.raises(ProtocolError, match="8 bytes answered, 4 asked"):
        Session(card, select=False).read_ef(0x0001, 4)


def test_read_der_refuses_a_header_longer_than_an_ef() -> None:
    card = EndlessCard(b"\x30\x82\xff\xf0\x90\x00")
    with pytest.raises(ProtocolError, match="declares 65520 bytes"):
        Session(card, select=False).read_der(0x0001)
    assert card.reads == 1


def test_protocol_error_never_shows_data() -> None:
    exc = ProtocolError("READ BINARY EF 0001", "no data at offset 0")
    assert str(exc) == "READ BINARY EF 0001: protocol error: no data at offset 0 (SW 9000)"
    assert exc.data == b""
