"""``pip install myna-hil`` without the ``[pcsc]`` extra: the in-process card, the plugin,
``myna-emu`` and ``myna-hil run --all`` work, and every PC/SC entry point says in one line
that it needs pyscard (non-zero exit).

Each command runs in a subprocess whose ``import smartcard`` fails: a ``sitecustomize`` on
``PYTHONPATH`` puts a blocker first on ``sys.meta_path`` and logs every attempt, so a
command that merely tried (and swallowed the error) is caught too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.optional import PYSCARD_MISSING
from harness.scenarios.runner import all_units

BIN = Path(sys.executable).parent
BLOCKER = """
import os, sys

class _NoPyscard:
    def find_spec(self, name, path=None, target=None):
        if name == "smartcard" or name.startswith("smartcard."):
            with open(os.environ["MYNA_TEST_BLOCK_LOG"], "a") as log:
                log.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoPyscard())
"""
NEEDS = "needs pyscard: pip install 'myna-hil[pcsc]'"


@pytest.fixture
def no_pyscard(tmp_path: Path) -> dict[str, str]:
    """The environment of a process in which pyscard cannot be imported."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(site)
    env["MYNA_TEST_BLOCK_LOG"] = str(tmp_path / "blocked.log")
    return env


def _run(
    env: dict[str, str], *argv: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _attempts(env: dict[str, str]) -> list[str]:
    log = Path(env["MYNA_TEST_BLOCK_LOG"])
    return log.read_text().split() if log.exists() else []


def test_the_blocker_blocks(no_pyscard: dict[str, str]) -> None:
    result = _run(no_pyscard, sys.executable, "-c", "import smartcard.System")
    assert result.returncode == 1 and "No module named 'smartcard'" in result.stderr
    assert _attempts(no_pyscard) == ["smartcard"]
    assert PYSCARD_MISSING == NEEDS


def test_run_all_and_myna_emu_never_import_pyscard(
    no_pyscard: dict[str, str], tmp_path: Path
) -> None:
    run = _run(no_pyscard, str(BIN / "myna-hil"), "run", "--all")
    assert run.returncode == 0, run.stdout + run.stderr
    n = len(all_units())
    assert f"{n} scenario units: {n} passed" in run.stdout
    state = tmp_path / "card.db"
    for argv in (
        ["init", "--state", str(state)],
        ["show", "--state", str(state)],
        ["apdu", "--state", str(state), "00A4040C0AD392F000260100000001", "0020009800"],
    ):
        emu = _run(no_pyscard, str(BIN / "myna-emu"), *argv)
        assert emu.returncode == 0, (argv, emu.stderr)
    assert emu.stdout.split() == ["9000", "63C3"]
    listing = _run(no_pyscard, str(BIN / "myna-hil"), "list")
    assert listing.returncode == 0 and "lockout-auth" in listing.stdout
    assert _attempts(no_pyscard) == []


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["status", "--reader", "ACS"], f"myna-hil: error: --reader {NEEDS}"),
        (["run", "lockout-auth", "--reader", "ACS"], f"myna-hil: error: --reader {NEEDS}"),
        (["run", "--all", "--slot", "6"], f"myna-hil: error: --slot {NEEDS}"),
        (["run", "--all", "--vpcd-slot", "6"], f"myna-hil: error: --slot {NEEDS}"),
        (["soak", "--seconds", "1", "--slot", "4,5"], f"myna-hil soak: error: soak {NEEDS}"),
        (["soak", "--tearing", "1", "--slot", "3"], f"myna-hil soak: error: soak {NEEDS}"),
        (["tap", "--reader", "ACS", "--slot", "5"], f"myna-hil: error: tap {NEEDS}"),
    ],
    ids=["status-reader", "run-reader", "run-slot", "run-vpcd-slot", "soak", "soak-tearing", "tap"],
)
def test_pcsc_commands_say_so_in_one_line(
    no_pyscard: dict[str, str], argv: list[str], line: str
) -> None:
    result = _run(no_pyscard, str(BIN / "myna-hil"), *argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [line]
    assert "Traceback" not in result.stdout


PLUGIN_TESTS = """
def test_in_process_card(myna_card, myna_transport):
    myna_card.block("auth")
    assert myna_transport.transmit(bytes.fromhex("00A4040C0AD392F000260100000001")) == b"\\x90\\x00"
    assert myna_card.tries_left("auth") == 0


def test_pyscard_reader(myna_pyscard_reader):
    pass


def test_vpcd_reader(myna_vpcd_reader):
    pass
"""


def test_the_plugin_works_and_its_pcsc_fixtures_say_so(
    no_pyscard: dict[str, str], tmp_path: Path
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_vendor.py").write_text(PLUGIN_TESTS)
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsE"]
    result = _run(no_pyscard, *pytest_cmd, "test_vendor.py", cwd=suite)
    out = result.stdout
    assert result.returncode == 1, out
    assert "1 passed, 1 skipped, 1 error" in out, out
    assert "ERROR test_vendor.py::test_pyscard_reader" in out
    assert f"\nmyna_pyscard_reader {NEEDS}\n" in out  # the whole report of the error
    assert "During handling" not in out
    assert f"myna_vpcd_reader: {NEEDS}" in out  # the skip's reason (an error when CI is set)
    assert _attempts(no_pyscard) == ["smartcard", "smartcard"]  # the two fixtures asked

    reader = _run(no_pyscard, *pytest_cmd, "--myna-reader", "ACS", "test_vendor.py", cwd=suite)
    assert reader.returncode == 4
    assert reader.stderr.strip() == f"ERROR: --myna-reader {NEEDS}"
