"""``myna-emu serve`` as a process: usage errors, serving a fake vpcd, clean exit on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.echo import ECHO_ATR
from tests.vpcd.conftest import FakeVpcd

SERVE = [sys.executable, "-m", "emulator.cli_serve"]
REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVE, *args], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "/nonexistent/card.json"], "state file not found: /nonexistent/card.json"),
        ([], "give --state FILE (or --memory / --echo)"),
        (["--echo", "--state", "x.json"], "--state cannot be combined"),
        (["--state", "a.json", "--slot", "0", "--slot", "1"], "2 slot(s) need 2 --state"),
        (["--echo", "--slot", "1", "--slot", "1"], "a port is given twice"),
        (["--echo", "--slot", "-1"], "--slot must be 0 or more"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_corrupt_state_file_is_one_line_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "card.json"
    state.write_text("{not json")
    result = _run("--state", str(state))
    assert result.returncode == 2
    assert "cannot open card state" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_until_signalled_then_exits_0(vpcd: FakeVpcd, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [*SERVE, "--echo", "--port", str(vpcd.port)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        vpcd.accept()
        vpcd.send(b"\x00\x01\x01\x00\x01\x04")
        assert vpcd.recv_frame() == ECHO_ATR
        assert vpcd.exchange(bytes.fromhex("00A4040C02AABB")) == b"\x90\x00"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        vpcd.assert_closed_by_card()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "card inserted into vpcd" in log
    assert "card removed from vpcd" in log
    assert sig.name in log


def test_memory_card_in_two_slots(tmp_path: Path) -> None:
    """Two --port endpoints in one process: each gets its own card."""
    first, second = FakeVpcd(), FakeVpcd()
    proc = subprocess.Popen(
        [*SERVE, "--memory", "--port", str(first.port), "--port", str(second.port)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        first.accept()
        second.accept()
        select_jpki = bytes.fromhex("00A4040C0AD392F000260100000001")
        for fake in (first, second):
            fake.send_frame(b"\x01")
            assert fake.exchange(select_jpki) == b"\x90\x00"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        first.close()
        second.close()
