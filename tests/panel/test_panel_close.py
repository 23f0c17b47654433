"""Closing the panel stops every use of the card before it returns.

Status reads and controls run in the panel loop's executor threads. Before close() waited for
them, a card database closed right after the panel could be closed under a running read, and
the process died inside SQLite (SIGSEGV; about one run in three of 60 open/close cycles).
The cycles run in a child process, so that a crash fails this test instead of the suite.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.pcscd import REPO

CYCLES = 200

SCRIPT = f"""
import pathlib, tempfile, time
import harness.panel.server as server_module
from emulator.card import Card
from emulator.vpcd import VpcdServer
from harness.panel import PanelServer
from tests.support.cards import fresh_state

server_module.REFRESH_SECONDS = 0.001  # the status task reads the card all the time
root = pathlib.Path(tempfile.mkdtemp())
for i in range({CYCLES}):
    card = Card.create(root / f"card{{i}}.db", fresh_state())
    panel = PanelServer([VpcdServer(card, "127.0.0.1", 9)], token="t0ken")
    panel.start()
    time.sleep(0.005)
    panel.close()
    card.close()
print("closed", {CYCLES})
"""


def test_the_card_can_be_closed_as_soon_as_the_panel_is() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.strip() == f"closed {CYCLES}"
