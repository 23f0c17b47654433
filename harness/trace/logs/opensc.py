"""OpenSC debug logs (``OPENSC_DEBUG=9``, or ``debug = 9`` and ``debug_file`` in opensc.conf).

OpenSC 0.2x logs every APDU from its PC/SC reader driver as a header line and a hex dump::

    P:23716; T:0x1404... 13:41:43.283 [pkcs15-tool] reader-pcsc.c:326:pcsc_transmit:
    Outgoing APDU (4 bytes):
    00 20 00 80 . ..

    P:23716; T:0x1404... 13:41:43.288 [pkcs15-tool] reader-pcsc.c:335:pcsc_transmit:
    Incoming APDU (2 bytes):
    63 C3 c.

Older versions start the header with the thread alone (``0x7fff... 11:53:36.120 [tool]``);
both are read. Lines of several processes or threads may interleave (a shared
``debug_file``): each ``P:``/``T:`` pair is followed on its own. The clock is the time of
day to the millisecond (no date); the card's ATR comes from ``match_atr_table: ATR :``;
``sc_reset`` is a card reset. An outgoing APDU whose transmit failed, or that the log leaves
unanswered, becomes a command the card never answered. Only the hex is read: the ASCII
column (which spells out a PIN) never is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.trace.logs.base import (
    CardReset,
    Exchange,
    LogFormatError,
    ParsedLog,
    dump_row,
    hex_bytes,
    lines,
)

__all__ = ["FORMAT", "looks_like", "parse"]

FORMAT = "opensc"

_HEADER = re.compile(
    r"(?:P:(\d+); T:(0x[0-9A-Fa-f]+)|(0x[0-9A-Fa-f]+)) "
    r"(\d{1,2}):(\d{2}):(\d{2})\.(\d{3}) \[([^\]]*)\] (.*)"
)
_APDU = re.compile(r"(Outgoing|Incoming) APDU \((\d+) bytes\):")
_ATR = re.compile(r".*match_atr_table: ATR\s+: ([0-9A-Fa-f:]+)\s*")
_RESET = re.compile(r".*: (?:sc_reset|pcsc_reset): called\s*")
_FAILED = re.compile(r".*SCardTransmit\S*\s+failed:?\s*(0x[0-9A-Fa-f]+)?.*")
_NO_ANSWER = "no answer in the log"
_ENDS = "the log ends before the answer"


def looks_like(sample: list[str]) -> bool:
    headers = sum(1 for s in sample if _HEADER.fullmatch(s.rstrip()))
    return headers > 0 and headers * 2 >= sum(1 for s in sample if s.strip()) // 2


@dataclass
class _Dump:
    """An APDU dump being read: ``size`` bytes expected, from line ``line``."""

    incoming: bool
    line: int
    size: int
    start: float
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _Stream:
    """One process/thread of the log: its last header time, its unanswered command."""

    time: float = 0.0
    command: tuple[int, bytes, float] | None = None


def parse(text: str) -> ParsedLog:
    log = ParsedLog(FORMAT, clock="day")
    streams: dict[str, _Stream] = {}
    key = ""
    dump: _Dump | None = None
    for n, raw in lines(text):
        line = raw.rstrip()
        if dump is not None:
            if not line:
                raise LogFormatError(n, f"the APDU dump of line {dump.line} stops short")
            left = dump.size - len(dump.data)
            dump.data += dump_row(line, min(16, left), n, "a row of an APDU dump")
            if len(dump.data) == dump.size:
                _dumped(dump, streams[key], log)
                dump = None
            continue
        header = _HEADER.fullmatch(line)
        if header is not None:
            key = f"{header.group(1)}/{header.group(2) or header.group(3)}"
            stream = streams.setdefault(key, _Stream())
            h, m, s, ms = (int(header.group(k)) for k in range(4, 8))
            stream.time = h * 3600 + m * 60 + s + ms / 1000
            message = header.group(9)
            atr = _ATR.fullmatch(message)
            if atr is not None:
                log.atr = log.atr or hex_bytes(atr.group(1), n, "the ATR")
            elif _RESET.fullmatch(message):
                log.items.append(CardReset(n, log.atr, stream.time))
            elif stream.command is not None and _FAILED.fullmatch(message):
                code = _FAILED.fullmatch(message)
                assert code is not None
                rv = f" ({code.group(1)})" if code.group(1) else ""
                at, command, start = stream.command
                log.items.append(Exchange(at, command, None, f"SCardTransmit failed{rv}", start))
                stream.command = None
            elif "reader-pcsc.c" in message and "pcsc_transmit: reader '" in message:
                log.reader = log.reader or message.split("reader '", 1)[1].rstrip("'")
            continue
        apdu = _APDU.fullmatch(line)
        if apdu is not None:
            if key not in streams:
                raise LogFormatError(n, "an APDU dump before any log header line")
            size = int(apdu.group(2))
            if size == 0:
                raise LogFormatError(n, "an APDU dump of 0 bytes")
            dump = _Dump(apdu.group(1) == "Incoming", n, size, streams[key].time)
    if dump is not None:
        raise LogFormatError(dump.line, "the log ends inside this APDU dump")
    for stream in streams.values():
        if stream.command is not None:
            at, command, start = stream.command
            log.items.append(Exchange(at, command, None, _ENDS, start))
    log.items.sort(key=lambda x: x.line)
    if not log.exchanges:
        raise LogFormatError(None, "no 'Outgoing APDU' in the log: is its debug level below 9?")
    return log


def _dumped(dump: _Dump, stream: _Stream, log: ParsedLog) -> None:
    data = bytes(dump.data)
    if not dump.incoming:
        if len(data) < 4:
            raise LogFormatError(dump.line, "an outgoing APDU shorter than its 4 header bytes")
        if stream.command is not None:
            at, command, start = stream.command
            log.items.append(Exchange(at, command, None, _NO_ANSWER, start))
        stream.command = (dump.line, data, dump.start)
        return
    if stream.command is None:
        raise LogFormatError(dump.line, "an incoming APDU with no outgoing one before it")
    if len(data) < 2:
        raise LogFormatError(dump.line, "an incoming APDU without its 2 status bytes")
    at, command, start = stream.command
    latency = (dump.start - start) % 86400
    log.items.append(Exchange(at, command, data, None, start, latency))
    stream.command = None
