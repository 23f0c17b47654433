"""``myna-emu serve`` as a process: usage errors, serving a fake vpcd, clean exit on signals."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emulator import cli
from emulator.echo import ECHO_ATR
from emulator.serve_workers import SlotSpec, run_workers
from tests.vpcd.conftest import FakeVpcd

SERVE = [sys.executable, "-m", "emulator.cli_serve"]
REPO = Path(__file__).resolve().parents[2]
#: Time for serve to start and open its cards (a fresh memory card generates RSA keys).
STARTUP = 30.0


def _children(pid: int) -> list[int]:
    """The pids of *pid*'s child processes (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


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
        _reap(proc)
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "card inserted into vpcd" in log
    assert "card removed from vpcd" in log
    assert sig.name in log


@pytest.mark.parametrize("layout", [[], ["--one-process"]], ids=["processes", "one-process"])
def test_memory_card_in_two_slots(layout: list[str]) -> None:
    """Two --port endpoints: each gets its own card (a process each, or threads of one)."""
    first, second = FakeVpcd(), FakeVpcd()
    for fake in (first, second):
        fake.listener.settimeout(STARTUP)  # two fresh cards generate their keys first
    proc = subprocess.Popen(
        [*SERVE, "--memory", *layout, "--port", str(first.port), "--port", str(second.port)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        first.accept()
        second.accept()
        assert len(_children(proc.pid)) == (0 if layout else 2)
        select_jpki = bytes.fromhex("00A4040C0AD392F000260100000001")
        for fake in (first, second):
            fake.send_frame(b"\x01")
            assert fake.exchange(select_jpki) == b"\x90\x00"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        _reap(proc)
        first.close()
        second.close()


def _start_two(*args: str) -> tuple[subprocess.Popen[str], FakeVpcd, FakeVpcd]:
    """``serve --echo`` (or *args*) in two fake vpcd ports, a process each, both accepted."""
    first, second = FakeVpcd(), FakeVpcd()
    for fake in (first, second):
        fake.listener.settimeout(STARTUP)
    proc = subprocess.Popen(
        [*SERVE, *(args or ("--echo",)), "--port", str(first.port), "--port", str(second.port)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for fake in (first, second):
            fake.accept()
            fake.send(b"\x00\x01\x01\x00\x01\x04")  # power on, get ATR
            assert fake.recv_frame()  # the card's ATR
    except BaseException:
        _end(proc, first, second)
        raise
    return proc, first, second


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill *proc* if a failed step left it running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _end(proc: subprocess.Popen[str], *fakes: FakeVpcd) -> str:
    _reap(proc)
    for fake in fakes:
        fake.close()
    assert proc.stderr is not None
    return proc.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_process_per_slot_stops_every_slot_on_a_signal(sig: signal.Signals) -> None:
    proc, first, second = _start_two("--echo", "-v")
    try:
        children = _children(proc.pid)
        assert len(children) == 2
        for fake in (first, second):
            assert fake.exchange(bytes.fromhex("00A4040C02AABB")) == b"\x90\x00"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        first.assert_closed_by_card()
        second.assert_closed_by_card()
        assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    finally:
        log = _end(proc, first, second)
    # The children's records, printed by the parent's handler, in its format.
    for fake in (first, second):
        assert f"INFO emulator.vpcd: card inserted into vpcd at 127.0.0.1:{fake.port}" in log
        assert f"INFO emulator.vpcd: card removed from vpcd at 127.0.0.1:{fake.port}" in log
    assert log.count(f"{sig.name}: stopping after the exchange in hand") == 1
    assert "Traceback" not in log


def test_a_slot_process_that_dies_ends_the_whole_serve() -> None:
    proc, first, second = _start_two()
    try:
        victim = sorted(_children(proc.pid))[0]
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(timeout=10) == 1
        first.assert_closed_by_card()
        second.assert_closed_by_card()
    finally:
        log = _end(proc, first, second)
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "its card process was killed by SIGKILL; stopping the other slots" in errors[0]


def test_slot_processes_stop_when_serve_is_killed() -> None:
    proc, first, second = _start_two()
    try:
        children = _children(proc.pid)
        proc.kill()
        proc.wait(timeout=10)
        first.conn.settimeout(10)  # type: ignore[union-attr]
        second.conn.settimeout(10)  # type: ignore[union-attr]
        first.assert_closed_by_card()
        second.assert_closed_by_card()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in children)
    finally:
        _end(proc, first, second)


def _alive(pid: int) -> bool:
    """Running (a zombie, reaped by init later, counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_one_bad_card_of_two_is_one_line_exit_2(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.db", tmp_path / "bad.db"
    assert cli.main(["init", "--state", str(good)]) == 0
    bad.write_text("{not json")
    first, second = FakeVpcd(), FakeVpcd()
    try:
        result = _run(
            *("--state", str(good), "--port", str(first.port)),
            *("--state", str(bad), "--port", str(second.port)),
        )
    finally:
        first.close()
        second.close()
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"myna-emu serve: cannot open card state {bad}")
    )
    assert "Traceback" not in result.stderr


def test_traffic_of_slot_processes_is_redacted() -> None:
    proc, first, second = _start_two("--memory", "-vv")
    try:
        assert first.exchange(bytes.fromhex("00A4040C0AD392F000260100000001")) == b"\x90\x00"
        assert second.exchange(bytes.fromhex("00A4040C0AD392F000260100000001")) == b"\x90\x00"
        assert first.exchange(bytes.fromhex("002000980439393939"))[-2:] == b"\x63\xc2"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        log = _end(proc, first, second)
    assert f"127.0.0.1:{first.port} > 00200098 04 <redacted 4 bytes>" in log
    assert "39393939" not in log
    assert f"127.0.0.1:{second.port} > 00A4040C0AD392F000260100000001" in log


def test_slot_records_reach_the_parents_handlers(caplog: pytest.LogCaptureFixture) -> None:
    """run_workers in this process: the children's records arrive in caplog's handler."""
    caplog.set_level(logging.INFO)
    fakes = [FakeVpcd(), FakeVpcd()]
    specs = [SlotSpec("echo", "127.0.0.1", fake.port) for fake in fakes]
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            for fake in fakes:
                fake.listener.settimeout(STARTUP)
                fake.accept()
                assert fake.exchange(b"\x00\xa4\x04\x00") == b"\x90\x00"
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        assert run_workers(specs, logging.INFO) == 0
    finally:
        driver.join(STARTUP)
        for fake in fakes:
            fake.close()
    assert not failures, failures
    inserted = [r for r in caplog.records if r.getMessage().startswith("card inserted")]
    assert sorted(r.getMessage() for r in inserted) == sorted(
        f"card inserted into vpcd at 127.0.0.1:{fake.port}" for fake in fakes
    )
    assert len({r.process for r in inserted}) == 2
    assert os.getpid() not in {r.process for r in inserted}
    assert all(r.name == "emulator.vpcd" for r in inserted)


def test_echo_sized_answers_the_bytes_le_asks_for(vpcd: FakeVpcd) -> None:
    proc = subprocess.Popen(
        [*SERVE, "--echo-sized", "--port", str(vpcd.port)], cwd=REPO, stderr=subprocess.DEVNULL
    )
    try:
        vpcd.accept()
        vpcd.send(b"\x00\x01\x01\x00\x01\x04")
        assert vpcd.recv_frame() == ECHO_ATR
        assert vpcd.exchange(bytes.fromhex("00B0000000")) == bytes(256) + b"\x90\x00"
        assert vpcd.exchange(bytes.fromhex("00200098")) == b"\x90\x00"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        _reap(proc)


def test_echo_sized_and_state_files_do_not_mix() -> None:
    result = _run("--echo-sized", "--state", "x.db")
    assert result.returncode == 2
    assert "--state cannot be combined" in result.stderr
