"""End to end through the real pcscd and vpcd driver: pyscard written the ordinary way,
pcsc_scan, the PC/SC transport's errors, card removal and re-insertion.

Slot 1 ("Virtual PCD 00 01") is used here, and slot 7 for the reset by another application;
slot 0 belongs to the behaviour suite's link.

pcscd + vpcd 3.3 quirk: when an SCardTransmit hits a card socket that has died (emulator
killed, or the card pulled mid-command), vpcd drops the socket inside the transmit instead of
at a presence poll, and the slot then stops reporting a re-inserted card for as long as the
client process that made that call keeps running (seen for 40 s+; a fresh process is usually
fine, but not always); a reset through a second handle can do the same. The tests that
provoke it run last, and the reset test has a slot of its own.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.System import readers

from emulator.echo import ECHO_ATR
from emulator.vpcd import VpcdServer, reader_name, slot_port
from harness.hil.pcsc import (
    AmbiguousReaderError,
    CardResetError,
    NoCardError,
    NoSuchReaderError,
    PcscTransport,
    list_readers,
    select_reader,
)
from harness.transport import CardRemovedError
from tests.support.pcscd import READER_SLOT0, READER_SLOT1, REPO, in_ci
from tests.vpcd.conftest import STANDIN_ATR, StandInCard, wait_until

pytestmark = [pytest.mark.vpcd, pytest.mark.usefixtures("pcscd")]

#: pcscd polls presence every ~0.4 s; insertion and removal show within a few polls.
POLL_TIMEOUT = 10.0
SELECT = bytes.fromhex("00A4040C0AD392F000260100000001")


class EchoProcess:
    """``python -m emulator.cli_serve --echo --slot 1``, as a separate process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli_serve", "--echo", "--slot", "1", "-v"],
            cwd=REPO,
            stderr=open(f"/tmp/myna-echo-{time.time_ns()}.log", "w"),  # noqa: SIM115
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=10)


@pytest.fixture
def echo() -> Iterator[EchoProcess]:
    process = EchoProcess()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()
    wait_until(lambda: not _card_present(READER_SLOT1), POLL_TIMEOUT, "slot 1 to empty")


def _reader(name: str) -> object:
    matches = [r for r in readers() if str(r) == name]
    assert matches, f"{name!r} not among {readers()}"
    return matches[0]


def _card_present(name: str) -> bool:
    connection = _reader(name).createConnection()  # type: ignore[attr-defined]
    try:
        connection.connect()
    except (NoCardException, CardConnectionException):
        return False
    connection.disconnect()
    return True


def _connected(name: str) -> CardConnection:
    connection = _reader(name).createConnection()  # type: ignore[attr-defined]
    connection.connect()
    return connection  # type: ignore[no-any-return]


# -- pyscard, the ordinary way ------------------------------------------------------------


def test_pyscard_ordinary_code_talks_to_the_emulator(echo: EchoProcess) -> None:
    echo.start()
    wait_until(lambda: _card_present(READER_SLOT1), POLL_TIMEOUT, "the echo card")
    connection = _reader(READER_SLOT1).createConnection()  # type: ignore[attr-defined]
    connection.connect()
    try:
        assert bytes(connection.getATR()) == ECHO_ATR
        assert connection.transmit(list(SELECT)) == ([], 0x90, 0x00)
        assert connection.transmit([0x00, 0xB0, 0x00, 0x00, 0x00]) == ([], 0x90, 0x00)
    finally:
        connection.disconnect()
    assert echo.stop() == 0


def test_killed_emulator_is_a_removed_card_and_a_restart_brings_it_back(
    echo: EchoProcess,
) -> None:
    echo.start()
    wait_until(lambda: _card_present(READER_SLOT1), POLL_TIMEOUT, "the echo card")
    connection = _connected(READER_SLOT1)
    assert connection.transmit(list(SELECT))[1:] == (0x90, 0x00)
    connection.disconnect()
    # Not transmitting on a handle while the card dies: see test_transmit_to_a_killed_emulator.
    echo.stop(signal.SIGKILL)
    wait_until(lambda: not _card_present(READER_SLOT1), POLL_TIMEOUT, "pyscard to see it removed")
    echo.start()
    wait_until(lambda: _card_present(READER_SLOT1), POLL_TIMEOUT, "the card to come back")
    again = _connected(READER_SLOT1)
    assert again.transmit(list(SELECT)) == ([], 0x90, 0x00)
    again.disconnect()


# -- pcsc_scan ----------------------------------------------------------------------------


def _scan_events(stream: object, events: queue.Queue[tuple[str, str]]) -> None:
    """Turn pcsc_scan's report into (reader, "inserted" | "removed") events."""
    reader = ""
    for raw in stream:  # type: ignore[attr-defined]
        line = raw.strip()
        if line.startswith("Reader ") and ": " in line:
            reader = line.split(": ", 1)[1]
        elif line.startswith("Card state: Card inserted"):
            events.put((reader, "inserted"))
        elif line.startswith("Card state: Card removed"):
            events.put((reader, "removed"))


def _expect_event(events: queue.Queue[tuple[str, str]], reader: str, wanted: str) -> None:
    """Wait for pcsc_scan to report ``wanted`` for ``reader`` (other reports are skipped)."""
    deadline = time.monotonic() + POLL_TIMEOUT
    seen: list[tuple[str, str]] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            break
        seen.append(event)
        if event == (reader, wanted):
            return
    pytest.fail(f"pcsc_scan did not report {reader!r} {wanted} in {POLL_TIMEOUT}s: {seen}")


def test_pcsc_scan_sees_the_card_inserted_and_removed(echo: EchoProcess) -> None:
    tools = [t for t in ("pcsc_scan", "stdbuf") if shutil.which(t) is None]
    if tools:
        message = f"not installed: {tools} (pcsc-tools, coreutils)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    # stdbuf -oL: pcsc_scan writes through stdio, block-buffered into a pipe.
    scan = subprocess.Popen(
        ["stdbuf", "-oL", "pcsc_scan", "-n"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    threading.Thread(target=_scan_events, args=(scan.stdout, events), daemon=True).start()
    try:
        _expect_event(events, READER_SLOT1, "removed")  # the initial report
        echo.start()
        _expect_event(events, READER_SLOT1, "inserted")
        assert echo.stop() == 0
        _expect_event(events, READER_SLOT1, "removed")
    finally:
        scan.terminate()
        scan.wait(timeout=10)


# -- harness.hil.pcsc -------------------------------------------------------------------------


def test_list_readers_has_the_virtual_readers() -> None:
    found = list_readers()
    assert READER_SLOT0 in found
    assert READER_SLOT1 in found


def test_select_reader_rules() -> None:
    found = ["Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR39U ICC Reader 00 00"]
    assert select_reader("Virtual PCD 00 01", found) == "Virtual PCD 00 01"
    assert select_reader("acr39", found) == "ACS ACR39U ICC Reader 00 00"
    with pytest.raises(AmbiguousReaderError) as ambiguous:
        select_reader("Virtual PCD", found)
    assert ambiguous.value.readers == found[:2]
    with pytest.raises(NoSuchReaderError) as missing:
        select_reader("Gemalto", found)
    assert "ACS ACR39U ICC Reader 00 00" in str(missing.value)


def test_transport_errors_name_the_readers() -> None:
    with pytest.raises(AmbiguousReaderError, match="Virtual PCD 00 01"):
        PcscTransport("Virtual PCD")
    with pytest.raises(NoSuchReaderError, match=r"readers found: .*Virtual PCD 00 00"):
        PcscTransport("No Such Reader 99")


def test_no_card_in_reader(echo: EchoProcess) -> None:
    # The `echo` fixture is only used to make sure slot 1 is empty (it waits at teardown).
    wait_until(lambda: not _card_present(READER_SLOT1), POLL_TIMEOUT, "slot 1 to be empty")
    with pytest.raises(NoCardError, match="no card in 'Virtual PCD 00 01'"):
        PcscTransport(READER_SLOT1)


def test_pcscd_not_running_is_named() -> None:
    code = (
        "from harness.hil.pcsc import list_readers, PcscdNotRunningError\n"
        "try:\n    list_readers()\nexcept PcscdNotRunningError as e:\n    print('NOT RUNNING', e)\n"
    )
    env = dict(os.environ, PCSCLITE_CSOCK_NAME="/nonexistent/pcscd.comm")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert "NOT RUNNING pcscd is not running" in result.stdout, result.stderr


def _serve_standin(slot: int) -> Iterator[tuple[VpcdServer, StandInCard]]:
    card = StandInCard()
    server = VpcdServer(card, port=slot_port(slot), backoff_min=0.01, backoff_max=0.1)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server, card
    server.stop()
    thread.join(10)
    reader = reader_name(slot)
    wait_until(lambda: not _card_present(reader), POLL_TIMEOUT, f"{reader} to empty")


@pytest.fixture
def standin_slot1() -> Iterator[tuple[VpcdServer, StandInCard]]:
    yield from _serve_standin(1)


#: A slot of its own for the reset test: after the mid-command pull of the test before it,
#: vpcd 3.3 may not re-insert a card in slot 1 while this process runs (module docstring).
RESET_SLOT = 7


@pytest.fixture
def standin_reset_slot() -> Iterator[tuple[VpcdServer, StandInCard]]:
    yield from _serve_standin(RESET_SLOT)


def test_transport_transmit_reset_and_reconnect(  # late: may leave the slot stuck
    standin_slot1: tuple[VpcdServer, StandInCard],
) -> None:
    server, card = standin_slot1
    with PcscTransport("PCD 00 01", wait=POLL_TIMEOUT) as transport:
        assert transport.physical is True
        assert transport.name == "pcsc:Virtual PCD 00 01"
        assert transport.atr == STANDIN_ATR
        assert transport.transmit(SELECT) == SELECT[::-1] + b"\x90\x00"
        assert transport.reset() == STANDIN_ATR
        assert "reset" in card.events or card.events.count("on") >= 2  # power was cycled
        # The card loses power mid-command: the reader sees it pulled...
        card.tear_next = True
        with pytest.raises(CardRemovedError):
            transport.transmit(SELECT)
        # ...and the transport connects again once pcscd has seen it removed and re-inserted.
        assert transport.reset() == STANDIN_ATR
        assert transport.transmit(SELECT) == SELECT[::-1] + b"\x90\x00"
        assert server.connections == 2


def test_reset_by_another_application(
    standin_reset_slot: tuple[VpcdServer, StandInCard],
) -> None:
    reader = reader_name(RESET_SLOT)
    with (
        PcscTransport(reader, wait=POLL_TIMEOUT) as mine,
        PcscTransport(reader) as other,
    ):
        assert mine.transmit(SELECT)[-2:] == b"\x90\x00"
        other.reset()
        with pytest.raises(CardResetError, match="command not sent"):
            mine.transmit(SELECT)
        assert mine.transmit(SELECT)[-2:] == b"\x90\x00"  # reconnected
