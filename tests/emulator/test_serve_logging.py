"""``myna-emu serve`` (the installed command, not ``python -m emulator.cli_serve``) logs.

Its INFO lines (insertion, removal, "waiting for vpcd") and, with ``-vv``, the redacted APDU
traffic are what a user debugging a reader app reads; the real-client tests read them too.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

MYNA_EMU = Path(sys.executable).with_name("myna-emu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there: serve keeps retrying and says so


def test_serve_logs_at_info_through_the_myna_emu_command(tmp_path: Path) -> None:
    command = str(MYNA_EMU) if MYNA_EMU.exists() else shutil.which("myna-emu")
    if command is None:
        pytest.skip("the myna-emu script is not installed (pip install -e .)")
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [command, "serve", "--echo", "--port", str(_free_port()), "-v"],
            stderr=stderr,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while "waiting for vpcd" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    assert "INFO emulator.vpcd: waiting for vpcd at 127.0.0.1:" in log.read_text()
