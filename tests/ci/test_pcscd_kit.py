"""``myna-hil ci pcscd start | stop | status`` (harness/cikit): reader entries, reuse of a
running pcscd, stopping only what it started, one-line errors naming the packages.

The pcscd of this machine is shared: these tests never start or stop it. Starting one is
covered by ``ci/test.sh`` on a fresh machine; here a running pcscd is reused (the idempotent
path every CI rerun takes) and stopping is shown on a stand-in process named ``pcscd``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cikit import pcscd
from harness.cikit.pcscd import CiError, PcscdConfig
from harness.cli import main
from tests.support.pcscd import ensure_pcscd

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, **kw: object) -> PcscdConfig:
    driver = tmp_path / "drivers" / "libifdvpcd.so"
    driver.parent.mkdir(exist_ok=True)
    if not driver.exists():
        driver.write_bytes(b"\x7fELF a stand-in for the vpcd driver")
    conf = tmp_path / "reader.conf.d"
    conf.mkdir(exist_ok=True)
    return replace(
        PcscdConfig(driver=driver, conf_dir=conf, marker=tmp_path / "run" / "pcscd.pid"), **kw
    )


def test_readers_become_entries_two_slots_each(tmp_path: Path) -> None:
    assert [_cfg(tmp_path, readers=n).slots for n in (1, 2, 3, 8)] == [2, 2, 4, 8]
    entries = pcscd.reader_entries(_cfg(tmp_path, readers=6))
    assert [p.name for p in entries] == ["vpcd-myna-1", "vpcd-myna-2"]
    lib, text = entries[tmp_path / "reader.conf.d" / "vpcd-myna-2"]
    assert lib.name == "libifdvpcd-myna-2.so"
    # CHANNELID 0x8C7B + 2K: the ports myna-emu serve --slot 4 and 5 use.
    assert "CHANNELID    0x8C7F\n" in text and 'FRIENDLYNAME "Virtual PCD 2"' in text


def test_entries_are_written_once_with_a_driver_copy_each(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, readers=8)
    said: list[str] = []
    assert pcscd.write_reader_entries(cfg, said.append) is True
    assert len(said) == 6  # three driver copies, three entries
    for conf, (lib, text) in pcscd.reader_entries(cfg).items():
        assert conf.read_text() == text
        assert lib.read_bytes() == cfg.driver.read_bytes()
        assert lib.stat().st_ino != cfg.driver.stat().st_ino  # a copy, not a link
    said.clear()
    assert pcscd.write_reader_entries(cfg, said.append) is False  # idempotent
    assert said == []
    (cfg.conf_dir / "vpcd-myna-2").write_text("edited\n")
    assert pcscd.write_reader_entries(cfg, said.append) is True
    assert said == [f"wrote {cfg.conf_dir / 'vpcd-myna-2'} (libifdvpcd-myna-2.so)"]


def test_the_entries_match_the_ones_this_machine_runs_with() -> None:
    """The Python kit writes what ci/pcscd-start.sh always wrote: a rerun changes nothing."""
    cfg = PcscdConfig(readers=8)
    if not all(conf.exists() for conf in pcscd.reader_entries(cfg)):
        pytest.skip("this machine's pcscd was set up with fewer than 8 vpcd readers")
    for conf, (_, text) in pcscd.reader_entries(cfg).items():
        assert conf.read_text() == text


@pytest.mark.parametrize(
    ("what", "change"),
    [("pcscd is not installed", {"pcscd": "pcscd-absent"}), ("vpcd driver", {"driver": None})],
)
def test_missing_pieces_name_the_packages(tmp_path: Path, what: str, change: dict) -> None:
    cfg = _cfg(tmp_path)
    if change.get("driver", 1) is None:
        change = {"driver": tmp_path / "nothing.so"}
    with pytest.raises(CiError) as exc:
        pcscd.start(replace(cfg, **change), lambda _: None)
    message = str(exc.value)
    assert what in message
    assert "apt-get install pcscd vsmartcard-vpcd libpcsclite1" in message
    assert "\n" not in message


def test_missing_driver_from_the_cli_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {**os.environ, "MYNA_VPCD_DRIVER": str(tmp_path / "absent.so")}
    env["MYNA_PCSCD_MARKER"] = str(tmp_path / "pcscd.pid")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "ci", "pcscd", "start"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("myna-hil: error: the vpcd driver ")
    assert "apt-get install pcscd vsmartcard-vpcd" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci"]) == 2
    assert "ci needs a tool: pcscd" in capsys.readouterr().err
    assert main(["ci", "pcscd"]) == 2
    assert "start, stop or status" in capsys.readouterr().err
    assert main(["ci", "pcscd", "start", "--readers", "0"]) == 1
    assert "--readers must be 1..64" in capsys.readouterr().err
    assert main(["ci", "pcscd", "start", "--readers", "x"]) == 2


def _stand_in(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A process whose name is ``pcscd`` (a copy of sleep): what stop() may kill."""
    fake = tmp_path / "pcscd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "60"])
    deadline = time.monotonic() + 5
    while proc.pid not in pcscd.running_pcscd() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.pid in pcscd.running_pcscd()
    return proc


def test_stop_stops_the_pcscd_it_started_and_is_idempotent(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    proc = _stand_in(tmp_path)
    try:
        cfg.marker.parent.mkdir()
        cfg.marker.write_text(f"{proc.pid}\n")
        env = {**os.environ, "MYNA_PCSCD_MARKER": str(cfg.marker)}
        stop = [sys.executable, "-m", "harness", "ci", "pcscd", "stop"]
        out = subprocess.run(stop, capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert proc.wait(timeout=5) == -15  # SIGTERM, as pcscd wants it
        assert not cfg.marker.exists()
        assert out.stdout == f"myna-hil ci: stopped pcscd {proc.pid}\n"
        again = subprocess.run(stop, capture_output=True, text=True, env=env, timeout=60)
        assert again.returncode == 0 and "nothing to stop" in again.stdout
    finally:
        proc.kill()
        proc.wait()


def test_stop_leaves_a_process_that_is_not_pcscd_alone(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    other = subprocess.Popen(["sleep", "60"])  # the marker's pid was reused by another program
    try:
        cfg.marker.parent.mkdir()
        cfg.marker.write_text(f"{other.pid}\n")
        said: list[str] = []
        assert pcscd.stop(cfg, said.append) is None
        assert other.poll() is None  # still running
        assert not cfg.marker.exists()
        assert "no longer pcscd" in said[0]
    finally:
        other.kill()
        other.wait()


def test_stop_wrapper_without_marker_stops_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "MYNA_PCSCD_MARKER": str(tmp_path / "none.pid")}
    before = pcscd.running_pcscd()
    proc = subprocess.run(
        ["bash", str(REPO / "ci" / "pcscd-stop.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nothing to stop" in proc.stdout
    assert pcscd.running_pcscd() == before


@pytest.mark.vpcd
def test_start_reuses_the_running_pcscd_through_the_shell_wrapper(tmp_path: Path) -> None:
    """What ci/test.sh and tox run: the system Python, no virtualenv, a running pcscd reused,
    no marker written (so stop would not touch it)."""
    ensure_pcscd()
    env = {**os.environ, "MYNA_PCSCD_MARKER": str(tmp_path / "pcscd.pid")}
    env.pop("MYNA_VPCD_EXTRA", None)
    env.pop("PYTHONPATH", None)
    before = pcscd.running_pcscd()
    proc = subprocess.run(
        ["bash", str(REPO / "ci" / "pcscd-start.sh"), "--readers", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "reusing it" in proc.stdout
    assert "Virtual PCD 00 00" in proc.stdout
    assert not (tmp_path / "pcscd.pid").exists()
    assert pcscd.running_pcscd() == before


@pytest.mark.vpcd
def test_status_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ensure_pcscd()
    assert main(["ci", "pcscd", "status", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] and doc["reachable"]
    assert "Virtual PCD 00 00" in doc["vpcd_readers"]
    assert pcscd.list_readers() is not None
    assert set(doc["vpcd_readers"]) <= set(pcscd.list_readers() or ())
