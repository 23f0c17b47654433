"""What a foreign APDU log says, before it becomes a trace: exchanges, resets, the card's ATR.

Every reader of a log format (:mod:`.plain`, :mod:`.pcsc_spy`, :mod:`.opensc`) turns lines
into these records and raises :class:`LogFormatError` on the first line it cannot read. An
error names the line and what was expected there, **never what the line holds**: a log's
VERIFY carries the PIN in clear (and its ASCII column spells it out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "MAX_LOG_BYTES",
    "CardReset",
    "Exchange",
    "Item",
    "LogFormatError",
    "ParsedLog",
    "dump_row",
    "hex_bytes",
    "lines",
]

#: Larger logs are refused before they are read (a day of pcsc-spy output is a few MiB).
MAX_LOG_BYTES = 256 * 1024 * 1024

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{2}")


class LogFormatError(ValueError):
    """The log cannot be read: ``line`` (1-based, ``None`` for the whole file) and why."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Exchange:
    """One command and the card's answer, as the log tells them.

    ``response`` is ``None`` when the log shows no answer (``error`` says why: a PC/SC error,
    or the log ends first). ``start`` is when the command was sent, in seconds on the log's
    clock (:attr:`ParsedLog.clock`); ``latency`` how long the answer took (``None``: not
    logged).
    """

    line: int
    command: bytes
    response: bytes | None
    error: str | None = None
    start: float | None = None
    latency: float | None = None


@dataclass(frozen=True, slots=True)
class CardReset:
    """The app reset or re-powered the card (its selection and verified PINs are gone)."""

    line: int
    atr: bytes | None = None
    start: float | None = None


Item = Exchange | CardReset


@dataclass
class ParsedLog:
    """A whole log, in the order things happened.

    ``clock``: ``"epoch"`` when ``start`` values are seconds since 1970 (UTC), ``"day"``
    when they are seconds since the log's midnight (no date is logged), ``None`` when the
    log has no timestamps.
    """

    format: str
    items: list[Item] = field(default_factory=list)
    atr: bytes | None = None
    reader: str | None = None
    clock: str | None = None

    @property
    def exchanges(self) -> list[Exchange]:
        return [x for x in self.items if isinstance(x, Exchange)]


def lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of *text*, colour codes removed and line ends stripped."""
    for n, raw in enumerate(text.split("\n"), 1):
        yield n, _ANSI.sub("", raw).rstrip("\r")


def hex_bytes(text: str, line: int, what: str) -> bytes:
    """Bytes from hex written with or without separators (spaces, ``:``) between the bytes;
    :class:`LogFormatError` naming *what* (never the text) when it is not hex."""
    compact = "".join(text.replace(":", " ").split())
    if len(compact) % 2 or not all(
        _HEX_BYTE.fullmatch(compact[k : k + 2]) for k in range(0, len(compact), 2)
    ):
        raise LogFormatError(line, f"{what} is not hex bytes")
    return bytes.fromhex(compact)


def dump_row(text: str, count: int, line: int, what: str) -> bytes:
    """The first *count* bytes of a hex dump row (``"00 A4 04 0C  ..ascii.."``): each byte is
    two hex digits and a separator, so the ASCII column after them is never read."""
    chunk = text[: 3 * count]
    parts = chunk.split()
    if len(parts) != count or not all(_HEX_BYTE.fullmatch(p) for p in parts):
        raise LogFormatError(line, f"{what}: expected {count} hex bytes")
    return bytes(int(p, 16) for p in parts)
