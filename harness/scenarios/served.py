"""Scenarios through a real pcscd + vpcd, on an emulator this process serves itself.

``myna-hil run --vpcd-slot N`` puts the built-in emulator into vpcd slot N and runs every
unit through :class:`~harness.hil.pcsc.PcscTransport`, like an app would: the card is a PC/SC card
(``physical``), so the guard applies in full. The harness opts it in *by the identity of the
card it created* (the interlock rule of issue 5: only who started a virtual card may opt it
in), and keeps the card object, so the scenarios that need test controls (quirks, profile
change) run here too. Simulated in-card power loss does not: over PC/SC it would drop the
reader connection for good; tearing through vpcd is what the SIGKILL test exercises.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from emulator.card import Card
from emulator.echo import EchoCard
from emulator.identity import certificate_serial
from emulator.vpcd import VpcdServer, reader_name, slot_port
from harness.cards import pooled_card
from harness.controls import CardControls, InProcessCard
from harness.hil.guard import Interlocks
from harness.scenarios.runner import Opener, Unit
from harness.transport import Transport, TransportError

#: How long to wait for vpcd to accept the card and for pcscd to report it.
CONNECT_TIMEOUT = 15.0


def interlocks_for(card: Card) -> Interlocks:
    """The opt-in for a card this process created: its own identity, blocking allowed."""
    return Interlocks(certificate_serial(card.state.pki.auth_cert), allow_blocking=True)


@contextmanager
def served_emulator(slot: int) -> Iterator[tuple[Opener, str]]:
    """Serve the built-in emulator in *slot*; yield an opener for the runner and the reader.

    Each unit gets the pooled card of its profile (fresh state), swapped into the slot without
    reconnecting, and a fresh PC/SC connection to it.
    """
    from harness.hil.pcsc import PcscTransport  # pyscard: only when PC/SC is asked for

    reader = reader_name(slot)
    server = VpcdServer(EchoCard(), port=slot_port(slot))
    thread = threading.Thread(target=server.serve, name=f"myna-hil-vpcd-{slot}", daemon=True)
    thread.start()
    try:
        if not server.connected.wait(CONNECT_TIMEOUT):
            raise TransportError(
                f"vpcd does not accept a card on {server.address} (slot {slot}); is pcscd "
                f"running with the vpcd driver? (ci/pcscd-start.sh)"
            )

        def opener(unit: Unit) -> tuple[Transport, CardControls | None]:
            card = pooled_card(unit.profile)
            server.swap_card(card)
            transport = PcscTransport(reader, wait=CONNECT_TIMEOUT)
            if transport.atr != card.atr:
                transport.reset()  # pcscd still reports the previous card's ATR
            return transport, InProcessCard(card)

        yield opener, reader
    finally:
        server.stop()
        thread.join(timeout=5)
