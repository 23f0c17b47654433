"""The transport contract: the one seam between the card and everything above it.

Every carrier of APDUs -- the in-process emulator, a PC/SC reader (a physical one or the
virtual reader that vpcd provides), a trace being replayed -- implements :class:`Transport`.
Nothing above this module knows which one it has.
"""

from __future__ import annotations

import abc
from types import TracebackType

from emulator import TRAFFIC

__all__ = ["TRAFFIC", "CardRemovedError", "Transport", "TransportError"]


class TransportError(Exception):
    """The APDU could not be carried (no reader, card removed, daemon gone, ...)."""


class CardRemovedError(TransportError):
    """The card went away (pulled, powered off, emulator stopped) during the exchange."""


class Transport(abc.ABC):
    """Bytes in, bytes out, plus the card's power and answer-to-reset.

    ``transmit`` takes a whole command APDU and returns the whole response APDU
    (data followed by SW1 SW2). Transports never interpret status words.
    """

    #: Human-readable description, e.g. ``"in-process"`` or ``"pcsc:Virtual PCD 00 00"``.
    name: str = "transport"
    #: True when the card behind this transport is (or must be treated as) a physical card.
    physical: bool = False

    @property
    @abc.abstractmethod
    def atr(self) -> bytes:
        """The answer-to-reset of the card as last powered up."""

    @abc.abstractmethod
    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU and return the response APDU (data + SW)."""

    @abc.abstractmethod
    def reset(self) -> bytes:
        """Reset the card (security state is lost) and return the new ATR."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the carrier. Idempotent."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
