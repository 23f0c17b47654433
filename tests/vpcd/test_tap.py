"""``myna-hil tap`` end to end, with no physical card: ``myna-emu serve`` plays the card in
the reader (slot 4), the real ``myna-hil tap`` process serves slot 5, and apps -- plain
pyscard code and OpenSC's tools -- talk to slot 5 through pcscd and vpcd."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from smartcard.Exceptions import CardConnectionException

from emulator.card import Card
from harness.cli import main
from harness.trace.explain import Cause, explain
from harness.trace.recorder import read_trace
from harness.trace.records import Cmd, Meta
from tests.emulator.apdus import JPKI, select_app, verify
from tests.support import carddb
from tests.support.cards import fresh_state
from tests.support.pcscd import ensure_pcscd, in_ci
from tests.support.tap import (
    BIN,
    CARD_READER,
    SESSION,
    TAP_READER,
    TAP_SLOT,
    App,
    Bench,
    bench,
    card_present,
    tool_env,
    wait_until,
)

pytestmark = pytest.mark.vpcd

WRONG_AUTH = verify("9999", p2=0x98)
AUTH_TOKEN = "JPKI (User Authentication PIN)"
REFUSED = b"\x69\x83"


@pytest.fixture(scope="module", autouse=True)
def _pcscd() -> None:
    ensure_pcscd()
    card_present(TAP_READER)  # fails with the way out when pcscd lacks the slot


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "card.db"
    Card.create(path, fresh_state()).close()
    return path


@pytest.fixture
def tapbench(state: Path, tmp_path: Path) -> Iterator[Bench]:
    with bench(state, tmp_path) as b:
        yield b


def _run_session(reader: str) -> list[bytes]:
    app = App(reader)
    try:
        return [app.send(apdu) for apdu in SESSION]
    finally:
        app.close()


def test_answers_are_byte_identical_with_the_tap_and_without(tapbench: Bench) -> None:
    direct = _run_session(CARD_READER)
    before = carddb.tries(tapbench.state)
    tapbench.start_tap()
    tapped = _run_session(TAP_READER)
    assert tapbench.stop_tap() == 0
    assert tapped == direct
    assert [r[-2:].hex().upper() for r in tapped][6:9] == ["63C4", "9000", "9000"]
    assert carddb.tries(tapbench.state) == before  # the session restores what it spends
    # The trace holds every command of the app, nothing refused, nothing the tap added
    # but counter queries (the default floor checks the three VERIFYs with data).
    records = read_trace(tapbench.trace)
    assert isinstance(records[0], Meta) and records[0].redacted
    app_cmds = [r for r in records if isinstance(r, Cmd) and r.i not in _queries(records)]
    assert len(app_cmds) == len(SESSION)
    assert explain(records).refused == 0
    assert b"ABC123".hex().upper() not in tapbench.trace.read_text()


def _queries(records: list) -> set[int]:
    return {
        r.fields["i"]
        for r in records
        if getattr(r, "event", None) == "counter-query" and getattr(r, "actor", None) == "tap"
    }


@pytest.mark.parametrize(
    ("apdu", "pin", "forwarded"),
    [(WRONG_AUTH, "auth", ["63C2"]), (verify("WRONG1", p2=0x9B), "sign", ["63C4", "63C3", "63C2"])],
)
def test_the_floor_holds_against_a_retry_loop(
    tapbench: Bench, apdu: str, pin: str, forwarded: list[str]
) -> None:
    tapbench.start_tap()
    app = App(TAP_READER)
    try:
        assert app.send(select_app(JPKI))[-2:] == b"\x90\x00"
        answers = [app.send(apdu).hex().upper() for _ in range(10)]
    finally:
        app.close()
    assert answers == forwarded + ["6983"] * (10 - len(forwarded))
    assert carddb.tries(tapbench.state)[pin] == 2  # the card keeps the floor
    assert tapbench.stop_tap() == 0
    err = tapbench.tap.err() if tapbench.tap else ""
    refusals = [line for line in err.splitlines() if "REFUSED" in line]
    assert len(refusals) == 10 - len(forwarded)
    label = {"auth": "JPKI auth PIN", "sign": "JPKI signing password"}[pin]
    assert f"to the {label}" in refusals[0] and "2 tries left" in refusals[0]
    assert "previous commands: #0 SELECT jpki" in refusals[0]
    # The trace explains it: the app re-sent a failed value, again and again.
    expl = explain(read_trace(tapbench.trace))
    retries = [f for f in expl.findings if f.cause is Cause.AUTO_RETRY]
    assert len(retries) == 9 and expl.decrements == {pin: len(forwarded)}
    assert [f.decrement for f in retries] == [True] * (len(forwarded) - 1) + [False] * (
        10 - len(forwarded)
    )
    out = tapbench.tap.out() if tapbench.tap else ""
    assert "automatic retry by the app" in out and "refused by the tap" in out
    # ... and so does the CLI on the file, as a user would run it.
    status = subprocess.run(
        [str(BIN / "myna-hil"), "trace", "explain", str(tapbench.trace)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0 and "automatic retry by the app" in status.stdout
    for text in (err, out, tapbench.trace.read_text()):
        assert "39393939" not in text and "WRONG1" not in text and b"WRONG1".hex() not in text


def test_a_card_pulled_mid_session_ends_the_taps_virtual_card(tapbench: Bench) -> None:
    tapbench.start_tap()
    app = App(TAP_READER)
    try:
        assert app.send(select_app(JPKI))[-2:] == b"\x90\x00"
        tapbench.pull()  # the card leaves the reader
        wait_until(lambda: not card_present(TAP_READER), "the tap's virtual card to go")
        with pytest.raises(CardConnectionException):
            app.send(select_app(JPKI))
    finally:
        with contextlib.suppress(CardConnectionException):
            app.close()
    # Put it back: the tap inserts its virtual card again, and the app can go on.
    tapbench.serve()
    wait_until(lambda: card_present(TAP_READER), "the tap's virtual card to come back")
    again = App(TAP_READER)
    try:
        assert again.send(select_app(JPKI))[-2:] == b"\x90\x00"
    finally:
        again.close()
    assert tapbench.stop_tap() == 0
    out = tapbench.tap.out() if tapbench.tap else ""
    assert "card removed from 'Virtual PCD 2 00 00'" in out
    assert out.count("+ card in the reader") == 2


def test_sigint_and_sigterm_stop_the_tap_cleanly(tapbench: Bench) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        tapbench.start_tap()
        app = App(TAP_READER)
        app.send(select_app(JPKI))
        app.close()
        assert tapbench.stop_tap(sig) == 0
        out = tapbench.tap.out() if tapbench.tap else ""
        assert "tap summary: 1 command(s) from the app, 1 forwarded" in out
        assert "no retry-counter decrement" in out
        records = read_trace(tapbench.trace)  # complete: every line a record
        assert any(isinstance(r, Cmd) and r.name == "SELECT jpki" for r in records)


def test_json_lines_for_machines(tapbench: Bench) -> None:
    tapbench.start_tap("--json", "-")  # JSON lines on stdout, the text view on stderr
    app = App(TAP_READER)
    try:
        app.send(select_app(JPKI))
        app.send(WRONG_AUTH)
        app.send(WRONG_AUTH)
    finally:
        app.close()
    assert tapbench.stop_tap() == 0
    lines = [json.loads(line) for line in (tapbench.tap.out() if tapbench.tap else "").splitlines()]
    exchanges = [x for x in lines if x["event"] in ("exchange", "refused")]
    assert [(x["name"], x["sw"]) for x in exchanges] == [
        ("SELECT jpki", "9000"),
        ("VERIFY", "63C2"),
        ("VERIFY", "6983"),
    ]
    assert exchanges[2]["tries"] == 2 and exchanges[2]["previous"][-1]["sw"] == "63C2"
    assert [x["by"] for x in lines if x["event"] == "query"] == ["tap"]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["refused"] == 1
    assert [f["cause"] for f in summary["findings"]] == ["user_wrong", "auto_retry"]
    err = tapbench.tap.err() if tapbench.tap else ""
    assert "tap summary: 3 command(s) from the app" in err and "REFUSED #" in err


def test_floor_zero_forwards_a_blocking_loop(tapbench: Bench) -> None:
    tapbench.start_tap("--floor", "0")
    app = App(TAP_READER)
    try:
        app.send(select_app(JPKI))
        answers = [app.send(WRONG_AUTH).hex().upper() for _ in range(4)]
    finally:
        app.close()
    assert answers == ["63C2", "63C1", "63C0", "6984"]
    assert carddb.tries(tapbench.state)["auth"] == 0
    assert tapbench.stop_tap() == 0
    assert "REFUSED" not in (tapbench.tap.err() if tapbench.tap else "")


def test_usage_errors_are_one_line(tapbench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    # The tap's own slot as its reader; a slot that already holds a card (the emulator's).
    own = main(["tap", "--reader", TAP_READER, "--slot", str(TAP_SLOT)])
    busy = main(["tap", "--reader", TAP_READER, "--slot", "4"])
    missing = main(["tap", "--reader", CARD_READER, "--slot", "97"])
    err = capsys.readouterr().err.splitlines()
    assert (own, busy, missing) == (2, 2, 2)
    assert len(err) == 3 and all(line.startswith("myna-hil: error: ") for line in err)
    assert "relay to itself" in err[0]
    assert "already holds a card" in err[1]
    assert "no reader for slot 97" in err[2]


# -- OpenSC through the tap -------------------------------------------------------------------

PKCS11_MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
)


@pytest.fixture
def opensc() -> str:
    module = next((m for m in PKCS11_MODULES if Path(m).exists()), None)
    if shutil.which("pkcs15-tool") is None or module is None:
        reason = "OpenSC is not installed (package opensc)"
        if in_ci():
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return module


def _tool(slot: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, env=tool_env(slot), check=False
    )


@pytest.mark.opensc
def test_opensc_through_the_tap(tapbench: Bench, opensc: str) -> None:
    direct = _tool(4, "pkcs15-tool", "--reader", CARD_READER, "--list-pins")
    tapbench.start_tap()
    tapped = _tool(TAP_SLOT, "pkcs15-tool", "--reader", TAP_READER, "--list-pins")
    assert tapped.returncode == direct.returncode == 0, tapped.stderr
    assert tapped.stdout == direct.stdout
    assert re.findall(r"Tries left\s*:\s*(\d+)", tapped.stdout) == ["3", "5"]
    login = ["pkcs11-tool", "--module", opensc, "--token-label", AUTH_TOKEN, "--login", "--pin"]
    # A wrong PIN twice: the first reaches the card (3 -> 2), the second stops at the floor.
    first = _tool(TAP_SLOT, *login, "9999", "-O")
    second = _tool(TAP_SLOT, *login, "9999", "-O")
    assert first.returncode != 0 and "CKR_PIN_INCORRECT" in first.stderr + first.stdout
    assert second.returncode != 0 and "CKR_PIN_INCORRECT" not in second.stderr + second.stdout
    assert carddb.tries(tapbench.state)["auth"] == 2
    assert tapbench.stop_tap() == 0
    err = tapbench.tap.err() if tapbench.tap else ""
    assert "REFUSED" in err and "JPKI auth PIN" in err
