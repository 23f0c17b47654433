"""The vpcd leg of the transport-parametrised behaviour suite (see tests/conftest.py).

One :class:`~emulator.vpcd.VpcdServer` stays in ``Virtual PCD 00 00`` (slot 0) for the whole
test session; each test swaps its own card in and talks to it through a fresh
:class:`~harness.hil.pcsc.PcscTransport`, so every test pays a PC/SC connect (about a
millisecond), not pcscd's ~0.4 s insertion poll.

Not safe for parallel workers (pytest-xdist): they would all claim slot 0.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator

from emulator.echo import EchoCard
from emulator.vpcd import VirtualCard, VpcdServer, slot_port
from harness.hil.pcsc import PcscTransport
from harness.transport import Transport
from tests.support.pcscd import READER_SLOT0, ensure_pcscd

#: How long to wait for pcscd to notice the session's card at the first use.
INSERT_TIMEOUT = 10.0

_server: VpcdServer | None = None


def _stop(server: VpcdServer, thread: threading.Thread) -> None:
    server.stop()
    thread.join(timeout=5)


def session_server() -> VpcdServer:
    """The slot-0 server of this test session, started (and pcscd with it) on first use."""
    global _server
    if _server is None:
        ensure_pcscd()
        server = VpcdServer(EchoCard(), port=slot_port(0))
        thread = threading.Thread(target=server.serve, name="vpcd-link-slot0", daemon=True)
        thread.start()
        atexit.register(_stop, server, thread)
        if not server.connected.wait(INSERT_TIMEOUT):
            raise RuntimeError(f"could not connect to vpcd at {server.address}")
        _server = server
    return _server


def vpcd_transport(card: VirtualCard) -> Iterator[Transport]:
    """Serve ``card`` in slot 0 and yield a PC/SC transport to it; clean up afterwards."""
    server = session_server()
    server.swap_card(card)
    transport = PcscTransport(READER_SLOT0, wait=INSERT_TIMEOUT)
    try:
        if transport.atr != card.atr:
            transport.reset()  # pcscd still holds the previous card's ATR
        yield transport
    finally:
        transport.close()
