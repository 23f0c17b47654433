"""The in-process pyscard reader (harness.pyscard_reader over harness.virtual_pcsc): what
pyscard's own classes and its ``smartcard.scard`` functions see, as pcsc-lite would show it.
No pcscd involved: every call here is answered in this process."""

from __future__ import annotations

import gc
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.CardMonitoring import CardMonitor, CardObserver
from smartcard.CardRequest import CardRequest
from smartcard.Exceptions import CardConnectionException, CardRequestTimeoutException
from smartcard.ExclusiveTransmitCardConnection import ExclusiveTransmitCardConnection
from smartcard.ReaderMonitoring import ReaderMonitor, ReaderObserver
from smartcard.scard import SCardEstablishContext, SCardListReaders
from smartcard.System import readers

from harness.controls import InProcessCard
from harness.pyscard_reader import DEFAULT_READER, InProcessReader, pyscard_reader
from harness.pytest_plugin import make_card

REPO = Path(__file__).resolve().parents[2]
SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_PIN = bytes.fromhex("00A4020C020018")
STATUS = bytes.fromhex("00200080")
VERIFY_1234 = bytes.fromhex("002000800431323334")
#: COMPUTE DIGITAL SIGNATURE of "abc" with the auth key: 9000 only after the auth PIN.
SIGN = bytes.fromhex("802A01970361626300")


def _sw(connection: CardConnection, apdu: bytes) -> int:
    _data, sw1, sw2 = connection.transmit(list(apdu))
    return sw1 << 8 | sw2


def _context() -> int:
    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert code == scard.SCARD_S_SUCCESS
    return int(context)


def _connect(context: int, share: int = scard.SCARD_SHARE_SHARED) -> tuple[int, int]:
    code, card, _protocol = scard.SCardConnect(
        context, DEFAULT_READER, share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    return code, card


def _listed() -> list[str]:
    """The readers pyscard lists now ([] when there is no pcscd to ask)."""
    try:
        return [str(r) for r in readers()]
    except Exception:  # pyscard's "service not available" without pcscd
        return []


def test_the_reader_is_listed_for_the_duration_and_gone_after() -> None:
    before = _listed()
    with pyscard_reader() as reader:
        # The only reader: pcscd's (vpcd's here, when it runs) are hidden meanwhile.
        assert _listed() == [reader.name] == [DEFAULT_READER]
        # Names an app bound at import time reach it too (smartcard.scard functions).
        code, context = SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert code == scard.SCARD_S_SUCCESS
        assert SCardListReaders(context, []) == [scard.SCARD_S_SUCCESS, [DEFAULT_READER]]
        assert scard.SCardReleaseContext(context) == scard.SCARD_S_SUCCESS
    after = _listed()
    assert DEFAULT_READER not in after
    assert after == before  # pcscd's readers are back (when there is a pcscd)


def test_nesting_is_refused_and_readers_can_be_added() -> None:
    with pyscard_reader() as first:
        with pytest.raises(RuntimeError, match="installed already"), pyscard_reader():
            pass
        second = first.add(make_card(profile="face-auth"))
        assert [str(r) for r in readers()] == [DEFAULT_READER, "myna-hil In-Process Reader 01 00"]
        connection = readers()[1].createConnection()
        connection.connect()
        assert bytes(connection.getATR()) == second.card.card.atr
        connection.disconnect()


def test_security_state_lasts_as_long_as_a_connection(myna_pyscard_reader: InProcessReader) -> None:
    connection = readers()[0].createConnection()
    connection.connect()
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN):
        assert _sw(connection, apdu) == 0x9000
    assert _sw(connection, VERIFY_1234) == 0x9000
    assert _sw(connection, SIGN) == 0x9000  # verified in this session
    connection.disconnect()  # the last connection: the card is powered off, as pcscd does
    connection.connect()
    assert _sw(connection, SELECT_JPKI) == 0x9000
    assert _sw(connection, SIGN) == 0x6982
    connection.disconnect()


def test_exclusive_connections_exclude(myna_pyscard_reader: InProcessReader) -> None:
    context = _context()
    code, first = _connect(context, scard.SCARD_SHARE_EXCLUSIVE)
    assert code == scard.SCARD_S_SUCCESS
    assert _connect(context)[0] == scard.SCARD_E_SHARING_VIOLATION
    assert scard.SCardDisconnect(first, scard.SCARD_LEAVE_CARD) == scard.SCARD_S_SUCCESS
    code, _shared = _connect(context)
    assert code == scard.SCARD_S_SUCCESS
    assert _connect(context, scard.SCARD_SHARE_EXCLUSIVE)[0] == scard.SCARD_E_SHARING_VIOLATION
    scard.SCardReleaseContext(context)


def test_a_reset_by_one_handle_is_reported_once_to_the_others(
    myna_pyscard_reader: InProcessReader,
) -> None:
    context = _context()
    _code, one = _connect(context)
    _code, other = _connect(context)
    assert scard.SCardTransmit(one, scard.SCARD_PCI_T1, list(SELECT_JPKI))[0] == 0
    code, _protocol = scard.SCardReconnect(
        one, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1, scard.SCARD_RESET_CARD
    )
    assert code == scard.SCARD_S_SUCCESS
    assert scard.SCardTransmit(other, scard.SCARD_PCI_T1, list(SELECT_JPKI))[0] == (
        scard.SCARD_W_RESET_CARD
    )
    assert scard.SCardTransmit(other, scard.SCARD_PCI_T1, list(SELECT_JPKI)) == [
        scard.SCARD_S_SUCCESS,
        [0x90, 0x00],
    ]
    code, name, _state, protocol, atr = scard.SCardStatus(other)
    assert (code, name, protocol) == (0, DEFAULT_READER, scard.SCARD_PROTOCOL_T1)
    assert bytes(atr) == myna_pyscard_reader.card.card.atr
    scard.SCardReleaseContext(context)


def test_handles_reconnect_after_a_removal_without_resetting_each_other(
    myna_pyscard_reader: InProcessReader,
) -> None:
    context = _context()
    _code, one = _connect(context)
    _code, other = _connect(context)
    myna_pyscard_reader.remove()
    assert scard.SCardTransmit(one, scard.SCARD_PCI_T1, list(SELECT_JPKI))[0] == (
        scard.SCARD_W_REMOVED_CARD
    )
    myna_pyscard_reader.insert()
    assert scard.SCardTransmit(one, scard.SCARD_PCI_T1, list(SELECT_JPKI))[0] == (
        scard.SCARD_W_REMOVED_CARD  # until the handle reconnects
    )
    t1 = scard.SCARD_PROTOCOL_T1
    assert scard.SCardReconnect(one, scard.SCARD_SHARE_SHARED, t1, scard.SCARD_LEAVE_CARD)[0] == 0
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN, VERIFY_1234):
        assert scard.SCardTransmit(one, scard.SCARD_PCI_T1, list(apdu))[1][-2:] == [0x90, 0x00]
    # The other handle comes back to the card as it is: the first one's login stands.
    assert scard.SCardReconnect(other, scard.SCARD_SHARE_SHARED, t1, scard.SCARD_LEAVE_CARD)[0] == 0
    assert scard.SCardTransmit(one, scard.SCARD_PCI_T1, list(SIGN))[1][-2:] == [0x90, 0x00]
    scard.SCardReleaseContext(context)


def test_a_transaction_holds_off_other_handles(myna_pyscard_reader: InProcessReader) -> None:
    context = _context()
    _code, one = _connect(context)
    _code, other = _connect(context)
    assert scard.SCardBeginTransaction(one) == scard.SCARD_S_SUCCESS
    done = threading.Event()

    def send() -> None:
        scard.SCardTransmit(other, scard.SCARD_PCI_T1, list(SELECT_JPKI))
        done.set()

    thread = threading.Thread(target=send)
    thread.start()
    assert not done.wait(0.2), "the other handle got through a transaction"
    assert scard.SCardEndTransaction(one, scard.SCARD_LEAVE_CARD) == scard.SCARD_S_SUCCESS
    assert done.wait(5)
    thread.join()
    scard.SCardReleaseContext(context)


def test_pyscards_exclusive_transmit_decorator(myna_pyscard_reader: InProcessReader) -> None:
    connection = ExclusiveTransmitCardConnection(readers()[0].createConnection())
    connection.connect()
    connection.lock()  # SCardBeginTransaction
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN, VERIFY_1234):
        assert _sw(connection, apdu) == 0x9000
    assert _sw(connection, SIGN) == 0x9000
    connection.unlock()  # SCardEndTransaction
    connection.disconnect()


def test_status_changes_timeouts_and_cancel(myna_pyscard_reader: InProcessReader) -> None:
    context = _context()
    code, states = scard.SCardGetStatusChange(
        context, 0, [(DEFAULT_READER, scard.SCARD_STATE_UNAWARE)]
    )
    assert code == scard.SCARD_S_SUCCESS
    (_name, present, atr) = states[0]
    assert present & scard.SCARD_STATE_PRESENT and present & scard.SCARD_STATE_CHANGED
    assert bytes(atr) == myna_pyscard_reader.card.card.atr
    current = present & ~scard.SCARD_STATE_CHANGED
    code, _states = scard.SCardGetStatusChange(context, 50, [(DEFAULT_READER, current)])
    assert code == scard.SCARD_E_TIMEOUT

    threading.Timer(0.1, myna_pyscard_reader.remove).start()
    code, states = scard.SCardGetStatusChange(context, 5000, [(DEFAULT_READER, current)])
    assert code == scard.SCARD_S_SUCCESS
    assert states[0][1] & scard.SCARD_STATE_EMPTY and states[0][1] >> 16 == 1  # one event

    threading.Timer(0.1, scard.SCardCancel, (context,)).start()
    empty = states[0][1] & ~scard.SCARD_STATE_CHANGED
    code, _states = scard.SCardGetStatusChange(context, scard.INFINITE, [(DEFAULT_READER, empty)])
    assert code == scard.SCARD_E_CANCELLED

    pnp = "\\\\?PnP?\\Notification"
    code, states = scard.SCardGetStatusChange(context, 0, [(pnp, 0)])
    assert code == scard.SCARD_S_SUCCESS and states[0][1] >> 16 == 1  # one reader
    scard.SCardReleaseContext(context)


def test_card_request_waits_for_an_insertion(myna_pyscard_reader: InProcessReader) -> None:
    myna_pyscard_reader.remove()
    with pytest.raises(CardRequestTimeoutException):
        CardRequest(timeout=0.1).waitforcard()
    threading.Timer(0.1, myna_pyscard_reader.insert).start()
    service = CardRequest(timeout=5, newcardonly=True).waitforcard()
    service.connection.connect()
    assert _sw(service.connection, SELECT_JPKI) == 0x9000
    service.connection.disconnect()


class _Cards(CardObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def update(self, observable: object, handlers: tuple[list, list]) -> None:  # type: ignore[type-arg]
        added, removed = handlers
        self.events += [("added", bytes(c.atr)) for c in added]
        self.events += [("removed", bytes(c.atr)) for c in removed]


def _until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_card_monitor_sees_insertions_and_removals(myna_pyscard_reader: InProcessReader) -> None:
    atr = myna_pyscard_reader.card.card.atr
    monitor, observer = CardMonitor(), _Cards()
    monitor.addObserver(observer)
    try:
        assert _until(lambda: observer.events == [("added", atr)]), observer.events
        myna_pyscard_reader.remove()
        assert _until(lambda: observer.events[-1:] == [("removed", atr)]), observer.events
        myna_pyscard_reader.insert()
        assert _until(lambda: observer.events[-1:] == [("added", atr)]), observer.events
    finally:
        monitor.deleteObserver(observer)


class _Readers(ReaderObserver):
    def __init__(self) -> None:
        self.added: list[str] = []

    def update(self, observable: object, handlers: tuple[list, list]) -> None:  # type: ignore[type-arg]
        self.added += [str(r) for r in handlers[0]]


def test_reader_monitor_sees_the_reader(myna_pyscard_reader: InProcessReader) -> None:
    monitor, observer = ReaderMonitor(), _Readers()
    monitor.addObserver(observer)
    try:
        assert _until(lambda: DEFAULT_READER in observer.added), observer.added
    finally:
        monitor.deleteObserver(observer)


def test_tearing_looks_like_a_card_lost_mid_command(
    myna_pyscard_reader: InProcessReader, myna_card: InProcessCard
) -> None:
    myna_card.tear_after_decrement()
    connection = readers()[0].createConnection()
    connection.connect()
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN):
        assert _sw(connection, apdu) == 0x9000
    with pytest.raises(CardConnectionException):
        connection.transmit(list(VERIFY_1234))
    assert myna_card.tries_left("auth") == 2  # the decrement was durable, the restore lost
    connection.reconnect()
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN):
        assert _sw(connection, apdu) == 0x9000
    assert _sw(connection, STATUS) == 0x63C2
    connection.disconnect()


def test_connections_that_outlive_the_reader_end_quietly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pyscard_reader():
        connection = readers()[0].createConnection()
        connection.connect()
        context = _context()
        _code, card = _connect(context)
    # The service is gone: pcsc-lite's answer when its daemon went away; releases succeed.
    assert scard.SCardTransmit(card, scard.SCARD_PCI_T1, list(SELECT_JPKI))[0] == (
        scard.SCARD_E_NO_SERVICE
    )
    assert scard.SCardReleaseContext(context) == scard.SCARD_S_SUCCESS
    del connection
    gc.collect()
    assert "Exception ignored" not in capsys.readouterr().err


APP_SEQUENCE = """
from smartcard.System import readers
from harness.pyscard_reader import pyscard_reader
from tests.apps.jpki_login_app import login

try:
    readers()
except Exception as exc:
    print("without the reader:", type(exc).__name__)
with pyscard_reader() as reader:
    print([login(pin).message for pin in ("1111", "1234")], reader.card.tries_left("auth"))
"""


def _libpcsclite() -> Path | None:
    for pattern in (
        "/usr/lib/*/libpcsclite.so.1",
        "/usr/lib/libpcsclite.so.1",
        "/lib/*/libpcsclite.so.1",
    ):
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            return path.resolve()
    return None


def test_works_where_libpcsclite_cannot_be_loaded() -> None:
    """pyscard loads libpcsclite.so.1 with dlopen when it is imported; if that fails it
    prints one line and every SCard* call answers "service not available". The in-process
    reader does not need the library: run the app in a private mount namespace where the
    library is an empty file."""
    library, unshare = _libpcsclite(), shutil.which("unshare")
    if library is None or unshare is None or os.geteuid() != 0:
        pytest.skip("needs root, unshare(1) and a libpcsclite.so.1 to hide in a mount namespace")
    script = f'mount --bind /dev/null {shlex.quote(str(library))} && exec "$@"'
    argv = [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh"]
    result = subprocess.run(
        [*argv, sys.executable, "-c", APP_SEQUENCE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if result.returncode != 0 and "mount" in result.stderr and "Traceback" not in result.stderr:
        pytest.skip(f"no private mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "Failed to dlopen libpcsclite.so.1" in result.stdout  # pyscard's own complaint
    assert "without the reader: EstablishContextException" in result.stdout
    assert "['wrong PIN, 2 tries left', 'logged in'] 3" in result.stdout
