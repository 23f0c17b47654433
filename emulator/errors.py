"""Card-side errors. Handlers raise :class:`SwError`; the dispatcher alone turns it into bytes."""

from __future__ import annotations


class SwError(Exception):
    """Answer the command with status word *sw* (and optional *data*, e.g. with ``6282``).

    For refusals deep in a helper; a handler answers its ordinary outcomes (``63Cx``...) by
    returning :func:`status` instead: raising costs more than the rest of a status query.
    """

    __slots__ = ("data", "sw")

    def __init__(self, sw: int, data: bytes = b"") -> None:
        # No formatting here: the text is made only if someone prints the error.
        self.sw = sw
        self.data = data

    def __str__(self) -> str:
        return f"{self.sw:04X}"

    def response(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")


def status(sw: int) -> bytes:
    """A response that is the status word *sw* alone (handlers return it for their ordinary
    refusals, such as ``63Cx`` or ``6982``, instead of raising)."""
    return sw.to_bytes(2, "big")


class CardPoweredOff(Exception):
    """An APDU reached a card that has no power: the carrier must power it on first."""


class PowerLost(CardPoweredOff):
    """Injected tearing: power vanished mid-command, after the counter decrement was durable."""
