"""``myna-emu`` on a terminal that cannot show Japanese text: no traceback, JSON stays UTF-8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_ascii_terminal_gets_replacements_and_utf8_json(tmp_path: Path) -> None:
    card = str(tmp_path / "card.db")
    made = _run("init", "--state", card, "--holder-seed", "7")
    assert made.returncode == 0 and b"Traceback" not in made.stderr, made.stderr
    assert b"created standard card" in made.stdout and b"?" in made.stdout
    shown = _run("show", "--state", card)
    assert shown.returncode == 0 and b"auth" in shown.stdout
    exported = _run("export", "--state", card)
    assert exported.returncode == 0, exported.stderr
    holder = json.loads(exported.stdout.decode("utf-8"))["holder"]
    assert "\u3000" in holder["name"], "the holder's name survives, ideographic space included"
