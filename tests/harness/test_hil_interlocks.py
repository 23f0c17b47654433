"""The HIL interlocks, proven on the emulator as if it were somebody's physical card.

Each test makes a card state with ``myna-emu init``, serves it with ``myna-emu serve --slot``
(a separate process, like a card in a reader), runs the HIL suite (``pytest tests/hil -m
hil``) or ``myna-hil run --reader`` as a user would, and then reads the state file and the
run's wire trace. Slot 1 by default (``MYNA_HIL_VPCD_SLOT`` to move; tests lock the slot
among themselves); a reader that still holds another card is waited for.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.identity import certificate_serial
from tests.support import carddb
from tests.support.pcscd import REPO, ensure_pcscd, in_ci

pytestmark = pytest.mark.vpcd

SLOT = int(os.environ.get("MYNA_HIL_VPCD_SLOT", "1"))
BIN = Path(sys.executable).parent
PIN = "1234"  # myna-emu init's default auth PIN
WAIT = 45.0

#: A fresh card's counters: the four PINs, the common-AP PIN and the four check numbers.
FULL_TRIES = {
    "auth": 3,
    "sign": 5,
    "juki": 3,
    "helper": 3,
    "common": 3,
    "text-a": 10,
    "text-b": 10,
    "surface-a": 10,
    "surface-b": 10,
}


@dataclass
class Served:
    state: Path
    card_id: str
    reader: str
    proc: subprocess.Popen[bytes]

    def digest(self) -> str:
        return carddb.digest(self.state)

    def tries(self) -> dict[str, int]:
        return carddb.tries(self.state)


def _reader(slot: int) -> str:
    from harness.pytest_plugin import vpcd_readers

    found = vpcd_readers()
    if isinstance(found, str) or slot >= len(found):
        pytest.skip(f"no vpcd reader for slot {slot}: {found}")
    return found[slot]


def _holds(reader: str, card_id: str) -> bool:
    """True when *reader* holds the card with *card_id* (free reads only)."""
    from harness.hil.guard import IDENTIFYING, GuardedTransport
    from harness.hil.identity import identify
    from harness.hil.pcsc import PcscTransport

    try:
        with PcscTransport(reader) as t:
            return identify(GuardedTransport(t, IDENTIFYING)).card_id == card_id
    except Exception:
        return False


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def slot_lock() -> Iterator[None]:
    """One test at a time on the slot, across xdist workers."""
    with open(f"/tmp/myna-hil-vpcd-slot{SLOT}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _init(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    state = tmp_path / "card.db"
    subprocess.run(
        [str(BIN / "myna-emu"), "init", "--state", str(state), "--atr", "contactless-alt", *extra],
        check=True,
        capture_output=True,
    )
    return state, certificate_serial(carddb.der(state, "auth_cert"))


def _serve(
    tmp_path: Path, state: Path | None, card_id: str | None, *extra: str
) -> Iterator[Served]:
    ensure_pcscd()
    reader = _reader(SLOT)
    args = ["--state", str(state)] if state else []
    proc = subprocess.Popen(
        [str(BIN / "myna-emu"), "serve", *args, *extra, "--slot", str(SLOT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from harness.pytest_plugin import wait_for_card

        deadline = time.monotonic() + WAIT
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            # The echo card has no ID: any card present will do.
            ready = wait_for_card(reader, 1.0) if card_id is None else _holds(reader, card_id)
            if ready:
                break
            time.sleep(0.3)
        if not ready:
            _unavailable(
                f"{reader!r} did not take the served card within {WAIT:.0f} s (slot busy or stuck)"
            )
        yield Served(state or tmp_path / "none", card_id or "", reader, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        from harness.pytest_plugin import wait_for_card

        wait_for_card(reader, 5.0, present=False)


@pytest.fixture
def served(tmp_path: Path, slot_lock: None, request: pytest.FixtureRequest) -> Iterator[Served]:
    """A standard card from ``myna-emu init`` (default PINs) served in the slot.

    Parametrised indirectly with a number: the auth PIN's tries left (earlier failures,
    maybe the owner's), written into the state file before serving.
    """
    tries: int | None = getattr(request, "param", None)
    state, card_id = _init(tmp_path)
    if tries is not None:
        carddb.set_tries(state, "auth", tries)
    yield from _serve(tmp_path, state, card_id)


@pytest.fixture
def echo(tmp_path: Path, slot_lock: None) -> Iterator[Served]:
    """``myna-emu serve --echo``: answers 9000 to everything (not a My Number card)."""
    yield from _serve(tmp_path, None, None, "--echo")


Trace = list[dict[str, object]]


def hil_suite(
    served: Served,
    tmp_path: Path,
    *args: str,
    pin: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, object], Trace]:
    """Run ``pytest tests/hil -m hil`` as a user would; return the run, report and trace."""
    report = tmp_path / "report"
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "MYNA_AUTH_PIN", "COV_"))
    }
    full["MYNA_READER"] = served.reader
    if pin is not None:
        full["MYNA_AUTH_PIN"] = pin
    full.update(env or {})
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/hil",
            "-m",
            "hil",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--hil-report",
            str(report),
            *args,
        ],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    doc = (
        json.loads((report / "report.json").read_text())
        if (report / "report.json").exists()
        else {}
    )
    trace = (
        [json.loads(line) for line in (report / "trace.jsonl").read_text().splitlines()]
        if (report / "trace.jsonl").exists()
        else []
    )
    return run, doc, trace


def myna_hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "myna-hil"), *args], capture_output=True, text=True, timeout=300, check=False
    )


def commands(trace: Trace) -> list[str]:
    return [str(r["name"]) for r in trace if r["type"] == "cmd"]


def verifies_with_data(trace: Trace) -> int:
    return sum(name == "VERIFY" for name in commands(trace))


# --- without opt-in -------------------------------------------------------------------------


def test_without_opt_in_and_pin_nothing_is_spent_or_written(served: Served, tmp_path: Path) -> None:
    before = served.digest()
    run, doc, trace = hil_suite(served, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
    assert "refused on a reader unless --destructive-card" in run.stdout
    assert served.digest() == before  # no state write at all: no VERIFY with data reached it
    assert verifies_with_data(trace) == 0
    assert set(commands(trace)) <= {"VERIFY (status)", "READ BINARY"} | {
        n for n in commands(trace) if n.startswith("SELECT")
    }
    assert doc["card"]["id"] == served.card_id and doc["atr"].startswith("3B 88 80 01")
    assert doc["opt_in"] == {"destructive": False, "blocking": False, "min_tries": 2}
    assert "A4 SELECT" in doc["latency_ms"]["by_ins"]


def test_owner_pin_is_verified_once_and_signs(served: Served, tmp_path: Path) -> None:
    run, doc, trace = hil_suite(served, tmp_path, pin=PIN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout
    assert verifies_with_data(trace) == 1 and "COMPUTE DIGITAL SIGNATURE" in commands(trace)
    assert served.tries() == FULL_TRIES
    blob = run.stdout + run.stderr + json.dumps(doc) + json.dumps(trace)
    assert PIN.encode().hex().upper() not in blob.upper()  # "31323334": never the PIN
    assert "<redacted 4 bytes>" in json.dumps(trace)


@pytest.mark.parametrize("served", [1], indirect=True, ids=["1-try-left"])
def test_owner_pin_with_too_few_tries_is_refused(served: Served, tmp_path: Path) -> None:
    before = served.digest()
    run, _, trace = hil_suite(served, tmp_path, pin=PIN)
    assert run.returncode == 1
    assert "a wrong value would leave fewer than 2" in run.stdout
    assert verifies_with_data(trace) == 0 and served.digest() == before
    assert served.tries()["auth"] == 1


@pytest.mark.parametrize("served", [2], indirect=True, ids=["2-tries-left"])
def test_min_tries_is_the_owners_choice(served: Served, tmp_path: Path) -> None:
    run, _, trace = hil_suite(served, tmp_path, "--min-tries", "1", pin=PIN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert verifies_with_data(trace) == 1 and served.tries()["auth"] == 3  # restored


# --- opt-in by identity ---------------------------------------------------------------------


def test_a_wrong_card_id_stops_after_the_identification(served: Served, tmp_path: Path) -> None:
    before = served.digest()
    run, doc, trace = hil_suite(
        served, tmp_path, "--destructive-card", "DEADBEEF", "--allow-blocking", pin=PIN
    )
    assert run.returncode == 1
    assert "does not name the card" in run.stdout and served.card_id in run.stdout
    assert "no tests ran" in run.stdout
    names = commands(trace)
    assert names and all(n.startswith("SELECT") or n == "READ BINARY" for n in names)
    assert served.digest() == before
    assert doc["stopped"] and doc["card"]["id"] == served.card_id  # identified, not opted in
    assert doc["opt_in"]["destructive"] is False


def test_the_named_card_runs_the_destructive_steps(served: Served, tmp_path: Path) -> None:
    run, doc, trace = hil_suite(
        served,
        tmp_path,
        "--destructive-card",
        served.card_id.lower(),
        "-k",
        "card or wrong_pin or lockout",
        pin=PIN,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "blocks a PIN: needs --allow-blocking" in run.stdout
    assert doc["tests"]["test_wrong_pin_costs_one_try_and_the_right_one_restores"] == "passed"
    assert served.tries() == FULL_TRIES
    assert verifies_with_data(trace) == 3  # owner check, wrong value, right value

    run, doc, trace = hil_suite(
        served,
        tmp_path,
        "--destructive-card",
        served.card_id,
        "--allow-blocking",
        "-k",
        "lockout",
        pin=PIN,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert doc["tests"]["test_scenario[lockout-auth]"] == "passed"
    assert "RESET RETRY COUNTER" in commands(trace)  # blocked, then re-set by the counter
    assert served.tries() == FULL_TRIES


def test_myna_hil_run_obeys_the_same_interlocks(served: Served) -> None:
    before = served.digest()
    out = myna_hil("run", "lockout-juki", "card-info", "--reader", served.reader)
    assert out.returncode == 0 and "skipped: destructive" in out.stdout
    assert served.digest() == before
    out = myna_hil("run", "lockout-juki", "--reader", served.reader, "--destructive-card", "1F")
    assert out.returncode == 2 and "does not name the card" in out.stderr
    assert served.digest() == before
    out = myna_hil(
        "run",
        "lockout-juki",
        "--reader",
        served.reader,
        "--destructive-card",
        served.card_id,
        "--allow-blocking",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert served.digest() != before and served.tries()["juki"] == 3
    out = myna_hil("status", "--reader", served.reader)
    assert out.returncode == 0 and f"card ID: {served.card_id}" in out.stdout


# --- bad input ------------------------------------------------------------------------------


def test_an_echo_card_is_not_a_my_number_card(echo: Served, tmp_path: Path) -> None:
    run, doc, trace = hil_suite(echo, tmp_path, pin=PIN)
    assert run.returncode == 1
    assert "not a My Number card" in run.stdout and "no DER header" in run.stdout
    assert verifies_with_data(trace) == 0 and doc["card"] is None
    out = myna_hil("run", "card-info", "--reader", echo.reader)
    assert out.returncode == 2 and "not a My Number card" in out.stderr
    out = myna_hil("status", "--reader", echo.reader)
    assert out.returncode == 2 and "not a My Number card" in out.stderr


def _hil_suite(env: dict[str, str], report: Path) -> subprocess.CompletedProcess[str]:
    """``pytest tests/hil -m hil`` as a user runs it, with *env*."""
    command = [sys.executable, "-m", "pytest", "tests/hil", "-m", "hil"]
    command += ["-p", "no:cacheprovider", "--hil-report", str(report)]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_no_such_reader_fails_with_what_was_found(tmp_path: Path) -> None:
    ensure_pcscd()
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    full["MYNA_READER"] = "No Such Reader 42"
    run = _hil_suite(full, tmp_path)
    assert run.returncode == 1
    assert "no reader matches 'No Such Reader 42'; readers found: 'Virtual PCD" in run.stdout
    full["MYNA_READER"] = "Virtual PCD"
    run = _hil_suite(full, tmp_path)
    assert run.returncode == 1 and "readers match 'Virtual PCD'" in run.stdout


def test_a_card_pulled_mid_run_stops_it_without_retries(served: Served, tmp_path: Path) -> None:
    run, doc, trace = hil_suite(
        served,
        tmp_path,
        "-p",
        "tests.hil.pull_card",
        pin=PIN,
        env={
            "MYNA_TEST_PULL_PID": str(served.proc.pid),
            "MYNA_TEST_PULL_BEFORE": "test_four_counters_without_spending_a_try",
        },
    )
    assert run.returncode == 2  # pytest: interrupted (session.shouldstop)
    assert "run stopped, nothing retried" in run.stdout and "card removed" in run.stdout
    assert "test_owner_pin" not in str(doc["tests"])  # later tests never ran
    assert doc["stopped"] and verifies_with_data(trace) == 0
    cmds_after_loss = (
        [
            r
            for r in trace
            if r["type"] == "cmd"
            and int(str(r["seq"]))
            > min(int(str(x["seq"])) for x in trace if x["type"] in ("lost",))
        ]
        if any(r["type"] == "lost" for r in trace)
        else []
    )
    assert cmds_after_loss == []
    assert served.tries() == FULL_TRIES
