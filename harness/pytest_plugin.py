"""pytest plugin for vendors testing their apps against a virtual My Number Card.

Registered through the ``pytest11`` entry point ``myna_hil``; nothing to import. Fixtures
(docs/plugin.md has the whole story):

``myna_card``
    A fresh in-process card (default PINs, see ``emulator.pins.DEFAULT_PINS``) with state
    controls -- :class:`harness.controls.InProcessCard`: ``set_pins``, ``set_tries``,
    ``block``, ``tries_left``, ``set_quirks``, ``set_atr_form``, ``change_profile``,
    ``tear_after_decrement`` -- and its ``transport``. Configure it with the marker
    ``@pytest.mark.myna_card("face-auth", pins=..., tries=..., quirks=..., atr=...,
    check_numbers=...)`` (:mod:`harness.plugin.marker`). A name the card does not know (a
    PIN, a quirk, a marker key) is an error listing the known ones: at collection for a
    marker, in the test for a control. Each test's card is a freshly issued state on a
    reused card object (:class:`harness.cards.CardPool`), over the published TEST keys (no
    key generation; ``--myna-fresh-keys`` or ``MYNA_HIL_FRESH_KEYS=1`` generates new keys
    once per process instead).
``myna_transport``
    What the code under test should talk to: the ``myna_card`` transport, or with
    ``--myna-reader NAME`` (or ``MYNA_READER``) a PC/SC reader. There, tests that use
    ``myna_card`` or carry a ``myna_card`` marker are skipped before any APDU is sent: a
    physical card has no controls, and a test written for a configured virtual card may send
    wrong PINs. A reader's card is identified and guarded (:mod:`harness.hil.guard`):
    read-only, no VERIFY with data at all, unless ``--myna-destructive-card ID`` names it
    (``--myna-allow-blocking`` for blocking steps).
``myna_pyscard_reader``
    The ``myna_card`` card in a virtual reader inside this process (no pcscd, no root): an
    app written against pyscard (``readers()``, ``createConnection()``, ``transmit()``,
    ``CardRequest``, ``CardMonitor``) sees it as the only reader for the test. Yields a
    :class:`harness.pyscard_reader.InProcessReader`: ``name``, ``card`` (the controls),
    ``insert()``, ``remove()``. Needs pyscard (the ``[pcsc]`` extra); without it, an error.
``myna_vpcd_card`` / ``myna_vpcd_reader``
    A card served in a vpcd slot of the local pcscd: its controls (``.reader``, ``.card_id``
    -- the opt-in a test passes as ``Interlocks(destructive_card=...)`` --, ``.slot``) /
    just the reader name. Needs pcscd with the vpcd driver: skipped when absent, an error
    when ``CI`` is set. Under xdist, worker ``gwN`` uses the first free slot from
    ``--myna-vpcd-slot`` + N (a reader that already holds a card is in use by someone else)
    and skips when there is none.
``myna_trace``
    The test's trace (:class:`harness.plugin.tracing.TestTrace`): every APDU of its card,
    redacted; ``myna_trace.assert_no_phantom_decrements()`` fails the test if a try was
    spent for any reason but a wrong value. On failure the decoded trace and the
    ``trace explain`` findings are a section of the report (terminal and JUnit XML);
    ``--myna-trace-dir DIR`` keeps one JSON Lines file per test.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, cast

import pytest

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from emulator.card import Card
from emulator.identity import FRESH_KEYS_ENV, certificate_serial
from emulator.vpcd import VpcdServer, slot_port
from harness.cards import CardPool, new_card, use_fresh_keys
from harness.controls import InProcessCard
from harness.hil.guard import Interlocks, authorise, guarded
from harness.inprocess import InProcessTransport
from harness.optional import PYSCARD_MISSING, PyscardMissingError, require_pyscard
from harness.plugin.marker import MARKER, MARKER_HELP, CardOptions, MarkerError, card_options
from harness.plugin.tracing import SECTION, RecordedCard, TestTrace, vpcd_observer
from harness.pyscard_reader import InProcessReader, pyscard_reader
from harness.trace.recorder import RecordingTransport, TraceLog
from harness.transport import Transport

VPCD_READER_PREFIX = "Virtual PCD"


#: Where the test's traces are kept (``item.stash``); created by the first fixture that
#: records, read by the report hook.
TRACE_KEY = pytest.StashKey[TestTrace]()
TRACE_DIR_KEY = pytest.StashKey[Path | None]()
READER_ENV = "MYNA_READER"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("myna-hil", "My Number Card test harness")
    group.addoption(
        "--myna-reader",
        metavar="NAME",
        default=None,
        help=f"run myna_transport tests against this PC/SC reader (default: ${READER_ENV})",
    )
    group.addoption(
        "--myna-destructive-card",
        metavar="ID",
        default=None,
        help="with --myna-reader: the reader holds this test card (its ID as "
        "'myna-hil status' shows it); destructive commands are allowed",
    )
    group.addoption(
        "--myna-allow-blocking",
        action="store_true",
        default=False,
        help="with --myna-destructive-card: commands that may block a PIN too",
    )
    group.addoption(
        "--myna-vpcd-slot",
        metavar="N",
        type=int,
        default=0,
        help="first vpcd slot myna_vpcd_card / myna_vpcd_reader may use (xdist worker N "
        "adds N); slots whose reader holds a card or whose lock is held are passed over",
    )
    group.addoption(
        "--myna-trace-dir",
        metavar="DIR",
        default=None,
        help="keep every test's card trace (redacted) as DIR/<node id>-<hash>.jsonl",
    )
    group.addoption(
        "--myna-fresh-keys",
        action="store_true",
        default=False,
        help="give the in-process cards newly generated RSA keys (once per process, xdist "
        f"workers included) instead of the published TEST keys; also {FRESH_KEYS_ENV}=1",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("myna_fresh_keys", default=False):
        use_fresh_keys()
    if reader_name(config):
        try:
            require_pyscard("--myna-reader")
        except PyscardMissingError as exc:  # before any test: one line, exit status 4
            raise pytest.UsageError(str(exc)) from None
    config.addinivalue_line("markers", MARKER_HELP)
    directory = config.getoption("--myna-trace-dir")
    config.stash[TRACE_DIR_KEY] = (
        None if directory is None else Path(config.invocation_params.dir, directory)
    )


def reader_name(config: pytest.Config) -> str | None:
    """The reader ``myna_transport`` uses: ``--myna-reader``, else ``MYNA_READER``."""
    return config.getoption("--myna-reader") or os.environ.get(READER_ENV) or None


#: Why a test that needs the in-process card does not run against ``--myna-reader``.
SKIP_ON_READER = (
    "needs the in-process card (the myna_card fixture's controls or a myna_card "
    "marker); --myna-reader points at a physical card, which has neither: "
    "skipped before any APDU is sent"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check every ``myna_card`` marker (a typo stops the run with the known names); under
    ``--myna-reader``, skip what needs the in-process card before any fixture runs."""
    problems = []
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            try:
                card_options(marker.args, marker.kwargs)
            except MarkerError as exc:
                problems.append(f"{item.nodeid}: @pytest.mark.{MARKER}: {exc}")
    if problems:
        raise pytest.UsageError("\n".join(problems))
    if not reader_name(config):
        return
    skip = pytest.mark.skip(reason=SKIP_ON_READER)
    for item in items:
        if item.get_closest_marker(MARKER) is not None or "myna_card" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(skip)


def _options(request: pytest.FixtureRequest) -> CardOptions:
    marker = request.node.get_closest_marker(MARKER)
    return CardOptions() if marker is None else card_options(marker.args, marker.kwargs)


def _configure(card: Card, options: CardOptions) -> None:
    """Give *card* what the marker asks beyond its issue (values, tries, quirks)."""
    check = options.check_numbers if isinstance(options.check_numbers, Mapping) else {}
    for name, value in {**options.pins, **check}.items():
        card.set_pin(name, value)
    for name, tries in options.tries.items():
        card.set_tries(name, tries)
    if options.quirks:
        card.set_quirks(**options.quirks)


def issue_card(options: CardOptions, pool: CardPool | None = None) -> Card:
    """A card as *options* describe it: from *pool* (a reused card object), else new.
    ``ValueError`` / ``KeyError`` (the card's one-line reason) for a value it refuses: a
    PIN breaking its format, tries out of range, a PIN the profile lacks."""
    issue: dict[str, Any] = {
        "atr_form": options.atr,
        "check_numbers": options.has_check_numbers,
    }
    card = pool.get(options.profile, **issue) if pool else new_card(options.profile, **issue)
    _configure(card, options)
    return card


def _test_card(request: pytest.FixtureRequest, pool: CardPool | None = None) -> Card:
    """The test's card as its marker asks; a refused value fails setup in one line."""
    try:
        return issue_card(_options(request), pool)
    except (ValueError, KeyError) as exc:
        problem = exc.args[0] if exc.args else str(exc)  # a KeyError's str() adds quotes
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)


def make_card(
    profile: str = "standard",
    pins: dict[str, str] | None = None,
    quirks: dict[str, bool] | None = None,
) -> InProcessCard:
    """A fresh in-process card of its own (not pooled): the run's TEST keys, default or
    given PINs, quirks."""
    options = card_options((profile,), {"pins": pins, "quirks": quirks})
    return InProcessCard(issue_card(options))


#: The plugin's cards: one card object per kind, re-issued for every test of the process.
_POOL = CardPool()


def trace_of(item: pytest.Item) -> TestTrace:
    """The trace of *item* (created empty on first use)."""
    trace = item.stash.get(TRACE_KEY, None)
    if trace is None:
        trace = item.stash[TRACE_KEY] = TestTrace(item.nodeid)
    return trace


@pytest.fixture
def myna_card(request: pytest.FixtureRequest) -> Iterator[InProcessCard]:
    """A fresh in-process virtual card with state controls (see the module docstring)."""
    if reader_name(request.config):
        pytest.skip(SKIP_ON_READER)
    card = _test_card(request, _POOL)
    transport = RecordingTransport(InProcessTransport(card), meta={"test": request.node.nodeid})
    trace_of(request.node).add("myna_card", transport.log)
    controls = InProcessCard(card, transport, log=transport.log)
    try:
        yield controls
    finally:
        transport.close()


@pytest.fixture
def myna_trace(request: pytest.FixtureRequest) -> TestTrace:
    """The test's trace: every APDU its card saw (redacted), ``explain()``,
    ``assert_no_phantom_decrements()``."""
    return trace_of(request.node)


@pytest.fixture
def myna_transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    """The card the code under test talks to: in-process, or ``--myna-reader NAME``."""
    reader = reader_name(request.config)
    if reader:
        # Optional dependency: harness.hil.pcsc needs pyscard; this plugin loads in every
        # pytest run of the environment, most of which never touch a reader.
        from harness.hil.pcsc import PcscTransport

        raw = RecordingTransport(PcscTransport(reader), meta={"test": request.node.nodeid})
        trace_of(request.node).add(f"reader {reader}", raw.log)
        try:
            interlocks = Interlocks(
                request.config.getoption("--myna-destructive-card"),
                request.config.getoption("--myna-allow-blocking"),
            )
            permit = authorise(raw, interlocks)
            if not permit.destructive:
                # Nobody gave the owner's PIN: a vendor's test sends whatever value it was
                # written with, and every test gets a new connection.
                permit = replace(permit, verifies=0)
            transport: Transport = guarded(raw, permit)
        except BaseException:
            raw.close()
            raise
        try:
            yield transport
        finally:
            transport.close()
        return
    card = request.getfixturevalue("myna_card")
    yield card.transport


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report gets its card's trace and findings; with ``--myna-trace-dir``
    every test's trace is kept once the test is torn down."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    trace = item.stash.get(TRACE_KEY, None)
    if trace is None or not trace.logs:
        return
    if report.failed and trace.apdus and not trace.reported:
        trace.reported = True
        text = trace.report()
        add_section = getattr(report.longrepr, "addsection", None)
        if callable(add_section):  # in the failure text: terminal and JUnit XML
            add_section(SECTION, text)
        else:
            report.sections.append((SECTION, text))
    directory = item.config.stash.get(TRACE_DIR_KEY, None)
    if report.when == "teardown" and directory is not None:
        trace.save(directory)


@pytest.fixture
def myna_pyscard_reader(myna_card: InProcessCard) -> Iterator[InProcessReader]:
    """The ``myna_card`` card in a pyscard reader of this process (no pcscd): pyscard's
    ``readers()`` lists it (and only it) for the test's duration."""
    try:
        require_pyscard("myna_pyscard_reader")
        missing = None
    except PyscardMissingError as exc:
        missing = str(exc)
    if missing:  # outside the handler: one line, no chained exception in the report
        pytest.fail(missing, pytrace=False)
    # The reader drives the card object, not the transport: record what it sends too.
    card = myna_card.card
    if myna_card.log is not None:
        card = cast(Card, RecordedCard(card, myna_card.log))
    with pyscard_reader(InProcessCard(card, myna_card.transport, log=myna_card.log)) as reader:
        yield reader


def _worker_index(config: pytest.Config) -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def vpcd_readers() -> list[str] | str:
    """The vpcd readers pcscd lists, or why there are none (a message)."""
    try:
        from smartcard.System import readers
    except ImportError:  # the [pcsc] extra is not installed
        return PYSCARD_MISSING
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:  # no daemon, no service: all the same here
        return f"pcscd not reachable: {exc}"
    found = sorted(n for n in names if n.startswith(VPCD_READER_PREFIX))
    return found or f"pcscd lists no vpcd reader (readers: {names or 'none'})"


def wait_for_card(reader: str, timeout: float, *, present: bool = True) -> bool:
    """Block until pcscd reports a card present (or gone) in *reader*.

    pcscd polls vpcd on its own schedule, so a card connected (or stopped) a moment ago may
    not be seen (or may still be seen) yet.
    """
    from smartcard import scard

    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rc != scard.SCARD_S_SUCCESS:
        return False
    try:
        states = [(reader, scard.SCARD_STATE_UNAWARE)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ms = max(1, int((deadline - time.monotonic()) * 1000))
            rc, states = scard.SCardGetStatusChange(ctx, min(ms, 500), states)
            if (
                rc == scard.SCARD_S_SUCCESS
                and bool(states[0][1] & scard.SCARD_STATE_PRESENT) == present
            ):
                return True
            states = (
                [(reader, states[0][1] & ~scard.SCARD_STATE_CHANGED)]
                if states
                else [(reader, scard.SCARD_STATE_UNAWARE)]
            )
        return False
    finally:
        scard.SCardReleaseContext(ctx)


def _unavailable(request: pytest.FixtureRequest, reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"myna_vpcd_reader: {reason} (CI is set, so this is an error)")
    pytest.skip(f"myna_vpcd_reader: {reason}")


class VpcdCard(InProcessCard):
    """A card served in a vpcd slot: its controls (each run under the server's lock, so no
    APDU is half-way through meanwhile), the reader it is in, and its identity.

    It has no ``transport`` of its own: the code under test reaches it through PC/SC, by
    :attr:`reader`; ``card_id`` is what a user would pass as ``--destructive-card``.
    """

    def __init__(self, card: Card, server: VpcdServer, reader: str, slot: int, log: TraceLog):
        super().__init__(card, _NoTransport(reader), log=log, exclusive=server.exclusive)
        self.server = server
        self.reader = reader
        self.slot = slot
        self.card_id = certificate_serial(card.state.pki.auth_cert)

    def __repr__(self) -> str:
        return f"VpcdCard(reader={self.reader!r}, profile={self.profile!r})"


class _NoTransport(Transport):
    """``myna_vpcd_card.transport``: refuses, naming the reader to use instead."""

    name = "vpcd"
    physical = False

    def __init__(self, reader: str) -> None:
        self.reader = reader

    @property
    def atr(self) -> bytes:
        raise self._error()

    def transmit(self, apdu: bytes) -> bytes:
        raise self._error()

    def reset(self) -> bytes:
        raise self._error()

    def close(self) -> None:
        pass

    def _error(self) -> TypeError:
        return TypeError(
            f"a vpcd card is reached through its PC/SC reader {self.reader!r}, "
            "not a transport (use myna_card for an in-process one)"
        )


#: The lock file of a vpcd slot: whoever serves a card in slot N holds it (``flock``), so
#: test runs, xdist workers and users of the same machine never share a slot.
SLOT_LOCK = "/tmp/myna-hil-vpcd-slot{slot}.lock"


def _lock_slot(slot: int) -> IO[str] | None:
    """The held lock file of *slot*, or ``None`` when another process holds it."""
    handle = open(SLOT_LOCK.format(slot=slot), "a")  # noqa: SIM115 - held past this call
    if fcntl is None:  # no flock (Windows): the presence check alone decides
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


@pytest.fixture
def myna_vpcd_card(request: pytest.FixtureRequest) -> Iterator[VpcdCard]:
    """A fresh virtual card in a vpcd slot; its controls, ``.reader`` and ``.card_id``."""
    found = vpcd_readers()
    if isinstance(found, str):
        _unavailable(request, found)
        return
    first = request.config.getoption("--myna-vpcd-slot") + _worker_index(request.config)
    slot, lock = None, None
    for n in range(first, len(found)):
        lock = _lock_slot(n)
        if lock is not None and not wait_for_card(found[n], 0.05, present=True):
            slot = n
            request.addfinalizer(lock.close)  # after the server's own clean-up
            break
        if lock is not None:
            lock.close()
    if slot is None:
        pytest.skip(
            f"myna_vpcd_reader: no free vpcd reader from slot {first} on "
            f"({len(found)} configured: {', '.join(found)}; a reader with a card "
            f"in it is in use, as is a slot whose lock {SLOT_LOCK} another process holds)"
        )
    card = _test_card(request)  # its own card object: a server thread uses it
    log = TraceLog(f"vpcd:{found[slot]}", card.atr, meta={"test": request.node.nodeid})
    trace_of(request.node).add(f"vpcd {found[slot]}", log)
    server = VpcdServer(card, port=slot_port(slot))
    server.observers.append(vpcd_observer(log, lambda: card.atr))
    thread = threading.Thread(target=server.serve, name=f"vpcd-slot-{slot}", daemon=True)
    thread.start()
    if not server.connected.wait(10):
        server.stop()
        thread.join(5)
        _unavailable(request, f"vpcd slot {slot} did not accept the card within 10 s")
        return
    if not wait_for_card(found[slot], 10.0):
        server.stop()
        thread.join(5)
        _unavailable(request, f"pcscd did not see the card in {found[slot]!r} within 10 s")
        return
    try:
        yield VpcdCard(card, server, found[slot], slot, log)
    finally:
        server.stop()
        thread.join(5)
        wait_for_card(found[slot], 5.0, present=False)  # the next test starts clean


@pytest.fixture
def myna_vpcd_reader(myna_vpcd_card: VpcdCard) -> str:
    """The PC/SC reader name of ``myna_vpcd_card`` (for tests that need only the name)."""
    return myna_vpcd_card.reader
