"""Card-side errors. Handlers raise :class:`SwError`; the dispatcher alone turns it into bytes."""

from __future__ import annotations


class SwError(Exception):
    """Answer the command with status word *sw* (and optional *data*, e.g. with ``6282``)."""

    __slots__ = ("data", "sw")

    def __init__(self, sw: int, data: bytes = b"") -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw
        self.data = data

    def response(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")


class CardPoweredOff(Exception):
    """An APDU reached a card that has no power: the carrier must power it on first."""


class PowerLost(CardPoweredOff):
    """Injected tearing: power vanished mid-command, after the counter decrement was durable."""
