"""The in-process transport: the emulator called directly, no PC/SC stack in between."""

from __future__ import annotations

from emulator.card import Card
from emulator.errors import CardPoweredOff
from harness.transport import CardRemovedError, Transport


class InProcessTransport(Transport):
    """Carries APDUs to a :class:`~emulator.card.Card` in this process.

    Powers the card on when opened. A simulated power loss inside the card (tearing fault)
    surfaces as :class:`CardRemovedError`, as a reader would report it; the next
    :meth:`reset` powers the card up again.
    """

    name = "in-process"
    physical = False

    def __init__(self, card: Card | None = None) -> None:
        self.card = card if card is not None else Card.memory()
        self._atr = self.card.power_on()

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        try:
            return self.card.transmit(apdu)
        except CardPoweredOff as exc:
            raise CardRemovedError(f"card lost power: {exc}") from None

    def reset(self) -> bytes:
        self._atr = self.card.reset()
        return self._atr

    def close(self) -> None:
        self.card.close()
