"""The log readers of ``myna-hil trace import``: each format, redaction, malformed logs.

Samples are written here in each tool's layout (tests/realclients/test_trace_import.py makes
real ones); the PIN ``1234`` (hex 31323334) must never reach a trace or an error message.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.trace.explain import Cause, explain
from harness.trace.logs import LogImportError, detect, import_log, parse, to_records
from harness.trace.recorder import dumps, read_trace
from harness.trace.records import Cmd, Lost, Meta, Reset, Rsp

PIN = b"1234".hex().upper()
SELECT = "00A4040C0AD392F000260100000001"
SELECT_PIN = "00A4020C020018"
VERIFY = "0020008004" + PIN

PLAIN = f"""# an app's own log
> {SELECT}
< 9000
> 00 A4 02 0C 02 00 18
< 90 00
>> {VERIFY[:10]} 31:32:33:35
<< 63C2
> {VERIFY[:10]} 31323335
< 63C1
# reset 3BDA13FF8131FB468012392F31C173C601C03B
> {SELECT}
< 9000
"""


def _spaced(hexstr: str) -> str:
    return " ".join(hexstr[k : k + 2] for k in range(0, len(hexstr), 2))


def _raw_call(n: int, command: str, response: str, *, pcis: bool = True) -> str:
    """One SCardTransmit as libpcscspy writes it (*pcis*: with the PCI lines of 1.9.9)."""
    t = "7F3EFBE76B80"
    send, recv = bytes.fromhex(command), bytes.fromhex(response)
    lines = [
        f">|1796132561|{600000 + 1000 * n}|SCardTransmit",
        "0x37DCE6A4",
        *(["0x00000002", "0x00000010"] if pcis else []),
        f"0x{len(send):08X}",
        _spaced(command) + " ",
        *(["0x00000001", "0x00000010"] if pcis else []),
        f"0x{len(recv):08X}",
        _spaced(response) + " ",
        f"<|1796132561|{600500 + 1000 * n}|SCardTransmit|Command successful.|0x00000000",
    ]
    return "".join(f"{t}@{line}\n" for line in lines)


RAW = (
    "7F3EFBE76B80@>|1796132561|500000|SCardConnect\n"
    "7F3EFBE76B80@0x37DCE6A4\n7F3EFBE76B80@Virtual PCD 1 00 00\n7F3EFBE76B80@0x00000002\n"
    "7F3EFBE76B80@0x00000003\n7F3EFBE76B80@0x1\n7F3EFBE76B80@0x2\n7F3EFBE76B80@0x37DCE6A4\n"
    "7F3EFBE76B80@0x00000002\n"
    "7F3EFBE76B80@<|1796132561|500100|SCardConnect|Command successful.|0x00000000\n"
    + _raw_call(1, SELECT, "9000")
    + _raw_call(2, SELECT_PIN, "9000")
    + _raw_call(3, VERIFY, "9000")
)


def _dump(direction: str, data: str) -> list[str]:
    raw = bytes.fromhex(data)
    rows = []
    for k in range(0, len(raw), 16):
        chunk = raw[k : k + 16]
        text = " ".join(f"{b:02X}" for b in chunk).ljust(47)
        ascii_ = "".join(chr(b) if 31 < b < 127 else "." for b in chunk)
        rows.append(f" {direction}  {k:04X} {text} {ascii_}")
    return rows


def _shown_call(command: str, response: str, indent: str = "") -> str:
    lines = [
        "SCardTransmit",
        " i hCard: 0x37DCE6A4",
        " i pioSendPci.dwProtocol: 0x00000002",
        f" i bSendLength 0x{len(command) // 2:08X} ({len(command) // 2})",
        " i bSendBuffer",
        *_dump("i", command),
        f" o bRecvLength 0x{len(response) // 2:08X} ({len(response) // 2})",
        " o bRecvBuffer",
        *_dump("o", response),
        " => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.000770]",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


DISPLAY = (
    "\x1b[34mSCardEstablishContext\x1b[0m\n i dwScope: SCARD_SCOPE_USER (0x00000000)\n"
    " => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.043401]\n"
    + _shown_call(SELECT, "9000")
    + _shown_call(SELECT_PIN, "9000")
    + _shown_call(VERIFY, "63C2")
    + _shown_call("00B0000000", "00" * 20 + "9000")
    + "\nThread 1/1\nResults sorted by total execution time\n"
)


def _opensc_apdu(t: str, direction: str, data: str) -> str:
    raw = bytes.fromhex(data)
    head = f"P:23716; T:0x1404 13:41:{t} [pkcs15-tool] reader-pcsc.c:326:pcsc_transmit: \n"
    rows = []
    for k in range(0, len(raw), 16):
        chunk = raw[k : k + 16]
        hexes = "".join(f"{b:02X} " for b in chunk)
        if k:
            hexes = hexes.ljust(48)
        rows.append(hexes + "".join(chr(b) if 31 < b < 127 else "." for b in chunk))
    return head + f"{direction} APDU ({len(raw)} bytes):\n" + "\n".join(rows) + "\n\n"


OPENSC = (
    "P:23716; T:0x1404 13:41:42.943 [pkcs15-tool] card.c:1234:match_atr_table: ATR     : "
    "3b:da:13:ff:81:31:fb:46:80:12:39:2f:31:c1:73:c6:01:c0:3b\n"
    "P:23716; T:0x1404 13:41:42.943 [pkcs15-tool] card.c:1245:match_atr_table: ATR try : 3B:80\n"
    + _opensc_apdu("43.001", "Outgoing", SELECT)
    + _opensc_apdu("43.004", "Incoming", "9000")
    + _opensc_apdu("43.010", "Outgoing", SELECT_PIN)
    + _opensc_apdu("43.011", "Incoming", "9000")
    + _opensc_apdu("43.020", "Outgoing", "0020008004" + b"9999".hex())
    + _opensc_apdu("43.028", "Incoming", "63C2")
    + _opensc_apdu("43.030", "Outgoing", "0020008004" + b"9999".hex())
    + "P:23716; T:0x1404 13:41:43.031 [pkcs15-tool] reader-pcsc.c:250:pcsc_internal_transmit: "
    "SCardTransmit/Control failed: 0x80100069\n"
)


def _write(tmp_path: Path, text: str, name: str = "app.log") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fmt"),
    [(PLAIN, "plain"), (RAW, "pcsc-spy-raw"), (DISPLAY, "pcsc-spy"), (OPENSC, "opensc")],
)
def test_each_format_is_detected(text: str, fmt: str) -> None:
    assert detect(text) == fmt


def test_plain_log(tmp_path: Path) -> None:
    records = import_log(_write(tmp_path, PLAIN))
    cmds = [r for r in records if isinstance(r, Cmd)]
    assert [c.hex for c in cmds][:3] == [SELECT, SELECT_PIN, "00200080 04 <redacted 4 bytes>"]
    assert [c.pin for c in cmds] == [None, None, "auth", "auth", None]
    assert isinstance(records[-3], Reset) and records[-3].atr.hex().upper().startswith("3BDA")
    # the same wrong value twice, nothing shown in between: an automatic retry
    assert [f.cause for f in explain(records).findings] == [Cause.USER_WRONG, Cause.AUTO_RETRY]
    assert cmds[2].fp == cmds[3].fp and cmds[2].fp is not None


def test_raw_spy_log_keeps_times_reader_and_redacts(tmp_path: Path) -> None:
    records = import_log(_write(tmp_path, RAW))
    meta = records[0]
    assert isinstance(meta, Meta) and meta.transport == "pcsc-spy-raw log of Virtual PCD 1 00 00"
    answers = [r for r in records if isinstance(r, Rsp)]
    assert [a.latency_ms for a in answers] == [0.5, 0.5, 0.5]
    assert [a.t for a in answers] == [0.0, 0.001, 0.002]
    assert answers[0].time == "2026-12-01T13:42:41.601000+00:00"
    assert PIN not in dumps(records)


def test_raw_spy_log_without_pcis_and_cut_off(tmp_path: Path) -> None:
    """Later pcsc-lite versions log no PCI lines; a log may stop inside a transmit."""
    newer = (
        _raw_call(1, SELECT, "9000", pcis=False)
        + _raw_call(2, SELECT_PIN, "9000", pcis=False)
        + _raw_call(3, VERIFY, "9000", pcis=False)
    )
    cut = newer.rsplit("7F3EFBE76B80@0x00000002", 1)[0]  # inside the last SCardTransmit
    for text in (newer, cut):
        records = import_log(_write(tmp_path, text), "pcsc-spy-raw")
        cmds = [r for r in records if isinstance(r, Cmd)]
        assert [c.hex for c in cmds] == [SELECT, SELECT_PIN, "00200080 04 <redacted 4 bytes>"]
    lost = [r for r in records if isinstance(r, Lost)]
    assert [x.error for x in lost] == ["the log ends before the answer"]


def test_display_spy_log(tmp_path: Path) -> None:
    records = import_log(_write(tmp_path, DISPLAY))
    cmds = [r for r in records if isinstance(r, Cmd)]
    assert [c.hex for c in cmds] == [
        SELECT,
        SELECT_PIN,
        "00200080 04 <redacted 4 bytes>",
        "00B0000000",
    ]
    answers = [r for r in records if isinstance(r, Rsp)]
    assert answers[-1].hex == "00" * 20 + "9000" and answers[-1].latency_ms == 0.77
    assert PIN not in dumps(records)


def test_display_spy_log_of_two_threads(tmp_path: Path) -> None:
    text = _shown_call(SELECT, "9000") + _shown_call(VERIFY, "63C2", indent="    ")
    records = import_log(_write(tmp_path, text), "pcsc-spy")
    assert [r.sw for r in records if isinstance(r, Rsp)] == [0x9000, 0x63C2]


def test_opensc_log(tmp_path: Path) -> None:
    records = import_log(_write(tmp_path, OPENSC))
    meta = records[0]
    assert isinstance(meta, Meta) and meta.atr is not None and meta.atr.hex().startswith("3bda")
    answers = [r for r in records if isinstance(r, Rsp)]
    assert [a.latency_ms for a in answers] == [3.0, 1.0, 8.0]
    lost = [r for r in records if isinstance(r, Lost)]
    assert len(lost) == 1 and lost[0].error == "SCardTransmit failed (0x80100069)"
    assert b"9999".hex() not in dumps(records)


def test_to_records_output_passes_the_validator(tmp_path: Path) -> None:
    for n, text in enumerate((PLAIN, RAW, DISPLAY, OPENSC)):
        out = tmp_path / f"{n}.jsonl"
        out.write_text(dumps(to_records(parse(text), "x.log")))
        assert read_trace(out)[0].to_json()["source"] == "x.log"


# -- malformed logs --------------------------------------------------------------------------

BAD = [
    (f"> {SELECT}\n< 9000\n> 0020008004 3132333G\n", 3, "not hex"),
    (f"> {SELECT}\n< 90\n", 2, "2 status bytes"),
    (f"> {SELECT}\n< 9000\n< 9000\n", 3, "no command before it"),
    (f"> {SELECT}\nhello {PIN}\n", 2, "expected '> command hex'"),
    ("> 00A4\n< 9000\n", 1, "4 header bytes"),
    (RAW.replace(_spaced(VERIFY), _spaced(VERIFY)[:-3]), 38, "has 8 bytes, not 9"),
    (DISPLAY.replace(" o  0000 63 C2", " o  0010 63 C2"), None, "wrong offset"),
    (
        OPENSC.replace("Incoming APDU (2 bytes):\n63 C2", "Incoming APDU (3 bytes):\n63 C2"),
        None,
        "3 hex bytes",
    ),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD)
def test_malformed_logs_are_one_line_errors_without_secrets(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int | None,
    reason: str,
) -> None:
    log = _write(tmp_path, text)
    assert main(["trace", "import", str(log)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("myna-hil: error: ") and reason in err
    assert re.search(r" line \d+: ", err)
    if line is not None:
        assert f" line {line}: " in err
    assert PIN not in err.replace(" ", "") and "1234" not in err and "Traceback" not in err
    assert not (tmp_path / "app.trace.jsonl").exists()


def test_unknown_and_binary_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "import", str(_write(tmp_path, "hello\nworld\n"))]) == 2
    assert "not a log this can read" in capsys.readouterr().err
    binary = tmp_path / "b.log"
    binary.write_bytes(b"\x00\x01\x02")
    assert main(["trace", "import", str(binary)]) == 2
    assert "binary" in capsys.readouterr().err
    assert main(["trace", "import", str(tmp_path / "missing.log")]) == 2
    assert "cannot read" in capsys.readouterr().err


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from((PLAIN + RAW + DISPLAY + OPENSC).split("\n")),
            st.text(max_size=60),
        ),
        max_size=40,
    ),
    st.sampled_from([None, "plain", "pcsc-spy", "pcsc-spy-raw", "opensc"]),
)
def test_any_text_is_imported_or_refused_in_one_line(lines: list[str], fmt: str | None) -> None:
    text = "\n".join(lines)
    try:
        records = to_records(parse(text, fmt), "fuzz.log")
    except LogImportError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(records[0], Meta)
    assert PIN not in dumps(records)


# -- the command ------------------------------------------------------------------------------


def test_default_output_name_force_and_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _write(tmp_path, PLAIN)
    assert main(["trace", "import", str(log)]) == 0
    out = tmp_path / "app.trace.jsonl"
    assert "next: myna-hil trace explain" in capsys.readouterr().out
    assert read_trace(out)[0].to_json()["source_format"] == "plain"
    assert main(["trace", "import", str(log)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["trace", "import", str(log), "--force", "--explain"]) == 0
    assert "automatic retry" in capsys.readouterr().out
    assert main(["trace", "import", str(log), "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith('{"seq": 0, "type": "meta"') and "->" in captured.err
    assert main(["trace", "import", str(log), "-o", str(log), "--force"]) == 2
    assert "overwrite the log itself" in capsys.readouterr().err
    assert log.read_text() == PLAIN
    assert main(["trace", "explain", str(out)]) == 0
    assert "automatic retry" in capsys.readouterr().out
    assert main(["trace", "show", str(out)]) == 0
    assert capsys.readouterr().out.startswith("trace of imported app.log on plain log")


def test_log_from_standard_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stdin.jsonl"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(RAW.encode())))
    assert main(["trace", "import", "-", "-o", str(out)]) == 0
    assert "standard input (pcsc-spy-raw): 3 APDUs" in capsys.readouterr().out
    assert read_trace(out)[0].to_json()["source"] == "stdin"
    assert main(["trace", "import", "-"]) == 2
    assert "say where the trace goes (-o)" in capsys.readouterr().err


def test_format_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _write(tmp_path, PLAIN)
    assert main(["trace", "import", str(log), "--format", "opensc"]) == 2
    assert "reading it as opensc" in capsys.readouterr().err
