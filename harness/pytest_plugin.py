"""pytest plugin for vendors testing their apps against a virtual My Number Card.

Registered through the ``pytest11`` entry point ``myna_hil``; nothing to import. Fixtures:

``myna_card``
    A fresh in-process card (default PINs, see ``emulator.pins.DEFAULT_PINS``) with state
    controls — :class:`harness.controls.InProcessCard`: ``set_pins``, ``set_tries``,
    ``block``, ``tries_left``, ``set_quirks``, ``change_profile``, ``tear_after_decrement``
    — and its ``transport``. Configure it with ``@pytest.mark.myna_card(profile="face-auth",
    quirks={"status_9000_after_verify": True})``; the quirks are the fields of
    :class:`emulator.state.Quirks` (``reselect_keeps_verification`` too: an app should pass
    with it on and off). Each test (and so each xdist worker) gets its own card; the
    worker's TEST keys are generated once.
``myna_transport``
    What the code under test should talk to: the ``myna_card`` transport, or with
    ``--myna-reader NAME`` a PC/SC reader. There, tests that use ``myna_card`` (its controls:
    fault injection, quirks, tries, blocking) or carry a ``myna_card`` marker are skipped
    before any APDU is sent: a physical card has no controls, and a test written for a
    configured virtual card may send wrong PINs. A reader's card is identified and guarded
    (:mod:`harness.hil.guard`): read-only, no VERIFY with data at all, unless
    ``--myna-destructive-card ID`` names it (``--myna-allow-blocking`` for blocking steps).
``myna_pyscard_reader``
    The ``myna_card`` card in a virtual reader inside this process (no pcscd, no root): an
    app written against pyscard (``readers()``, ``createConnection()``, ``transmit()``,
    ``CardRequest``, ``CardMonitor``) sees it as the only reader for the test. Yields a
    :class:`harness.pyscard_reader.InProcessReader`: ``name``, ``card`` (the controls),
    ``insert()``, ``remove()``. Needs pyscard (the ``[pcsc]`` extra); without it, an error.
``myna_vpcd_reader``
    A card served in a vpcd slot of the local pcscd; yields the reader name (the card's
    controls are on ``request.node.myna_vpcd_card``, its identity -- the opt-in a test
    passes as ``Interlocks(destructive_card=...)`` -- on ``request.node.myna_vpcd_card_id``).
    Needs pcscd with the vpcd driver: skipped when absent, an error when ``CI`` is set.
    Under xdist, worker ``gwN`` uses the first free slot from ``--myna-vpcd-slot`` + N
    (a reader that already holds a card is in use by someone else) and skips when there
    is none.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from emulator.identity import certificate_serial
from emulator.vpcd import VpcdServer, slot_port
from harness.cards import new_card
from harness.controls import InProcessCard
from harness.hil.guard import Interlocks, authorise, guarded
from harness.optional import PYSCARD_MISSING, PyscardMissingError, require_pyscard
from harness.pyscard_reader import InProcessReader, pyscard_reader
from harness.transport import Transport

VPCD_READER_PREFIX = "Virtual PCD"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("myna-hil", "My Number Card test harness")
    group.addoption(
        "--myna-reader",
        metavar="NAME",
        default=None,
        help="run myna_transport tests against this PC/SC reader",
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
        help="first vpcd slot myna_vpcd_reader may use (xdist worker N adds N); "
        "slots whose reader already holds a card are passed over",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--myna-reader"):
        try:
            require_pyscard("--myna-reader")
        except PyscardMissingError as exc:  # before any test: one line, exit status 4
            raise pytest.UsageError(str(exc)) from None
    config.addinivalue_line(
        "markers",
        "myna_card(profile='standard', pins=None, quirks=None): configure the "
        "myna_card fixture's card",
    )


#: Why a test that needs the in-process card does not run against ``--myna-reader``.
SKIP_ON_READER = (
    "needs the in-process card (the myna_card fixture's controls or a myna_card "
    "marker); --myna-reader points at a physical card, which has neither: "
    "skipped before any APDU is sent"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--myna-reader``, skip what needs the in-process card before any fixture runs."""
    if not config.getoption("--myna-reader"):
        return
    skip = pytest.mark.skip(reason=SKIP_ON_READER)
    for item in items:
        if item.get_closest_marker("myna_card") is not None or "myna_card" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(skip)


def _card_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("myna_card")
    return dict(marker.kwargs) if marker else {}


def make_card(
    profile: str = "standard",
    pins: dict[str, str] | None = None,
    quirks: dict[str, bool] | None = None,
) -> InProcessCard:
    """A fresh in-process card: the run's TEST keys, default or given PINs, quirks."""
    card = InProcessCard(new_card(profile))
    if pins:
        card.set_pins(**pins)
    if quirks:
        card.set_quirks(**quirks)
    return card


@pytest.fixture
def myna_card(request: pytest.FixtureRequest) -> Iterator[InProcessCard]:
    """A fresh in-process virtual card with state controls (see the module docstring)."""
    if request.config.getoption("--myna-reader"):
        pytest.skip(SKIP_ON_READER)
    card = make_card(**_card_options(request))
    try:
        yield card
    finally:
        card.transport.close()


@pytest.fixture
def myna_transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    """The card the code under test talks to: in-process, or ``--myna-reader NAME``."""
    reader = request.config.getoption("--myna-reader")
    if reader:
        # Optional dependency: harness.hil.pcsc needs pyscard; this plugin loads in every
        # pytest run of the environment, most of which never touch a reader.
        from harness.hil.pcsc import PcscTransport

        raw = PcscTransport(reader)
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
    with pyscard_reader(myna_card) as reader:
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


@pytest.fixture
def myna_vpcd_reader(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh virtual card in a vpcd slot; yields the PC/SC reader name."""
    found = vpcd_readers()
    if isinstance(found, str):
        _unavailable(request, found)
        return
    first = request.config.getoption("--myna-vpcd-slot") + _worker_index(request.config)
    slot = next(
        (n for n in range(first, len(found)) if not wait_for_card(found[n], 0.05, present=True)),
        None,
    )
    if slot is None:
        pytest.skip(
            f"myna_vpcd_reader: no free vpcd reader from slot {first} on "
            f"({len(found)} configured: {', '.join(found)}; a reader with a card "
            "in it is in use)"
        )
    opts = _card_options(request)
    card = make_card(**opts)
    server = VpcdServer(card.card, port=slot_port(slot))
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
    request.node.myna_vpcd_card = card
    request.node.myna_vpcd_card_id = certificate_serial(card.card.state.pki.auth_cert)
    try:
        yield found[slot]
    finally:
        server.stop()
        thread.join(5)
        wait_for_card(found[slot], 5.0, present=False)  # the next test starts clean
