"""No PIN value in any message of ``myna-emu``: output, errors, or a log line at any level.

Unusual values (not the defaults, not digits that occur in ATRs or keys' hex by chance) are
used, and each is searched as text and as hex in both cases, the way it travels in an APDU.
"""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator import cli
from emulator.redact import SECRET_INS, redact_command
from tests.emulator.test_cli import _reuse_keys  # noqa: F401 - autouse: no RSA key generation
from tests.support.secrets import leaked_forms

AUTH, SIGN, JUKI, HELPER = "8642", "QZXW7319PLMK", "9753", "1357"
SECRETS = [AUTH, SIGN, JUKI, HELPER]
SELECT_JPKI = "00A4040C0AD392F000260100000001"


def _assert_clean(text: str) -> None:
    assert leaked_forms(text, *SECRETS) == [], "a PIN value (or its hex) appears in a message"


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(1)  # every level, TRAFFIC included
    return caplog


def _run(capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None) -> str:
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        # argparse's usage errors exit: their text is checked like any other
        with contextlib.suppress(SystemExit):
            cli.main(list(args))
    finally:
        sys.stdin = old
    out = capsys.readouterr()
    return out.out + out.err


def test_no_cli_message_carries_a_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], everything: pytest.LogCaptureFixture
) -> None:
    card = str(tmp_path / "card.db")
    pins = [
        f"--pin=auth={AUTH}",
        f"--pin=sign={SIGN}",
        f"--pin=juki={JUKI}",
        f"--pin=helper={HELPER}",
    ]
    texts = [
        # A fixed holder: its random security code could be one of the PINs by chance.
        _run(capsys, "init", "--state", card, "--holder-seed", "15", *pins),
        # malformed and invalid --pin forms: the refusal names the rule, never the value
        _run(capsys, "init", "--state", str(tmp_path / "a.db"), "--pin", AUTH),
        _run(capsys, "init", "--state", str(tmp_path / "b.db"), "--pin", f"{AUTH}={JUKI}"),
        _run(capsys, "init", "--state", str(tmp_path / "c.db"), "--pin", f"auth={SIGN}"),
        _run(capsys, "init", "--state", str(tmp_path / "d.db"), "--pin", f"sign={AUTH}"),
        _run(capsys, "show", "--state", card),
        _run(capsys, "show", "--state", card, "--json"),
        _run(capsys, "export", "--state", card),
    ]
    verify = "0020009804" + AUTH.encode().hex()
    wrong_sign = "0020009B0C" + SIGN.encode().hex()[:-2] + "zz"
    texts += [
        _run(capsys, "apdu", "--state", card, SELECT_JPKI, verify),
        # a bad APDU that holds a PIN, as an argument and on stdin: where, not what
        _run(capsys, "apdu", "--state", card, SELECT_JPKI, wrong_sign),
        _run(capsys, "apdu", "--state", card, stdin=f"{SELECT_JPKI}\n{wrong_sign}\n"),
        _run(capsys, "apdu", "--state", card, stdin=f"{SELECT_JPKI}\n{verify}\n{verify[:-1]}\n"),
    ]
    texts += [r.getMessage() for r in everything.records]
    assert any("not a hex APDU" in t for t in texts), "the refusals were exercised"
    for text in texts:
        _assert_clean(text)


def test_bad_stdin_line_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = str(tmp_path / "card.db")
    assert cli.main(["init", "--state", card]) == 0
    wrong = "0020009804" + b"0000".hex()
    text = _run(capsys, "apdu", "--state", card, stdin=f"{SELECT_JPKI}\n{wrong}\nnot-hex\n")
    assert "line 3" in text and "9000" not in text and "63C" not in text
    assert "auth        3 / 3" in _run(capsys, "show", "--state", card)


def test_closed_stdin_is_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("myna-emu")
    if not script.exists():
        pytest.skip("myna-emu is not installed next to this interpreter")
    card = tmp_path / "card.db"
    subprocess.run([str(script), "init", "--state", str(card)], check=True, capture_output=True)
    r = subprocess.run(
        f"'{script}' apdu --state '{card}' <&-",
        shell=True,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "standard input" in r.stderr


@pytest.mark.parametrize("ins", sorted(SECRET_INS), ids=lambda i: f"INS{i:02X}")
@pytest.mark.parametrize("cla", [0x00, 0x01, 0x04, 0x0C, 0x10, 0x80, 0x84, 0x90, 0xFF])
def test_redaction_is_by_ins_whatever_the_class(cla: int, ins: int) -> None:
    secret = SIGN.encode()
    for body in (
        bytes([len(secret)]) + secret,
        bytes([len(secret)]) + secret + b"\x00",
        b"\x00\x00" + bytes([len(secret)]) + secret,
        secret,
    ):
        text = redact_command(bytes([cla, ins, 0x00, 0x9B]) + body)
        _assert_clean(text)
        assert "redacted" in text


def test_serve_traffic_log_redacts_every_secret_command(tmp_path: Path) -> None:
    """``serve -vv`` through its vpcd socket (this test plays vpcd): any CLA, INS 20-32."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulator.cli_serve",
                "--memory",
                "-vv",
                "--port",
                str(listener.getsockname()[1]),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        conn, _ = listener.accept()
        conn.settimeout(20)

        def exchange(frame: bytes) -> None:
            conn.sendall(len(frame).to_bytes(2, "big") + frame)
            if len(frame) > 1 or frame == b"\x04":
                n = int.from_bytes(_recv(conn, 2), "big")
                _recv(conn, n)

        exchange(b"\x01")  # power on
        exchange(bytes.fromhex(SELECT_JPKI))
        for cla in (0x00, 0x04, 0x0C, 0x10, 0x80, 0x01):
            for ins, value in (
                (0x20, AUTH),
                (0x21, JUKI),
                (0x24, HELPER),
                (0x2C, SIGN),
                (0x32, JUKI),
            ):
                raw = value.encode()
                exchange(bytes([cla, ins, 0x00, 0x98, len(raw)]) + raw)
        conn.close()
        deadline = time.monotonic() + 10
        while log.read_text().count(" > ") < 31 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        listener.close()
    text = log.read_text()
    assert text.count("<redacted") >= 30, "the traffic was logged"
    _assert_clean(text)


def _recv(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise AssertionError("serve closed the connection")
        buf += chunk
    return buf


def test_internal_error_log_is_redacted(
    everything: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emulator.card as card_module
    from tests.support.cards import fresh_state

    card = card_module.Card(fresh_state())
    card.power_on()

    def boom(*_: object) -> bytes:
        raise RuntimeError("bug")

    monkeypatch.setitem(card_module._ISO_COMMANDS, 0x20, boom)
    assert card.transmit(bytes.fromhex("0020009804") + AUTH.encode()) == b"\x6f\x00"
    messages = [r.getMessage() for r in everything.records]
    assert any("internal error" in m for m in messages)
    for m in messages:
        _assert_clean(m)
