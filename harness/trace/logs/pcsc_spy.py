"""pcsc-lite's spy: the PC/SC calls of any app, from ``libpcscspy`` and ``pcsc-spy``.

``libpcscspy.so`` stands in for ``libpcsclite.so.1`` and writes every call to the FIFO
``~/pcsc-spy``; the ``pcsc-spy`` program reads it and prints the calls. Both can be imported:

- ``pcsc-spy`` (:data:`DISPLAY`): what ``pcsc-spy`` prints, with or without colours
  (``-n``), handles (``-d``) or thread tags (``-t``): a function name line, `` i `` / `` o ``
  argument lines, hex dumps of the buffers, and `` => result [seconds]``. No wall clock; the
  seconds are each call's duration.
- ``pcsc-spy-raw`` (:data:`RAW`): the library's own lines (``cat ~/pcsc-spy > app.spy``),
  ``THREAD@>|sec|usec|Function`` ... ``THREAD@<|sec|usec|Function|text|0xRV``: wall-clock
  times to the microsecond.

Only ``SCardTransmit`` carries APDUs; ``SCardStatus`` gives the ATR, ``SCardConnect`` the
reader, and a reconnect or disconnect with ``SCARD_RESET_CARD`` / ``SCARD_UNPOWER_CARD``
becomes a card reset. A transmit that failed (``SCARD_W_REMOVED_CARD`` ...) becomes a
command the card never answered. Threads are followed separately and put back in the order
their calls started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.trace.logs.base import (
    CardReset,
    Exchange,
    Item,
    LogFormatError,
    ParsedLog,
    dump_row,
    hex_bytes,
    lines,
)

__all__ = ["DISPLAY", "RAW", "looks_like_display", "looks_like_raw", "parse_display", "parse_raw"]

DISPLAY = "pcsc-spy"
RAW = "pcsc-spy-raw"

#: dwInitialization / dwDisposition values that reset or re-power the card.
_RESETTING = {1, 2}
_ENDS = "the log ends before the answer"

# --- the library's raw lines -----------------------------------------------------------------

_RAW = re.compile(r"([0-9A-Fa-f]+)@(.*)")
_ENTER = re.compile(r">\|(\d+)\|(\d+)\|(\w+)")
_RETURN = re.compile(r"<\|(\d+)\|(\d+)\|(\w+)\|(.*)\|0x([0-9A-Fa-f]{8})")


def looks_like_raw(sample: list[str]) -> bool:
    first = next((s.strip() for s in sample if s.strip()), "")
    match = _RAW.fullmatch(first)
    return match is not None and _ENTER.fullmatch(match.group(2).strip()) is not None


@dataclass
class _RawCall:
    line: int
    name: str
    start: float
    args: list[str] = field(default_factory=list)
    where: list[int] = field(default_factory=list)  # the line of each argument


def parse_raw(text: str) -> ParsedLog:
    log = ParsedLog(RAW, clock="epoch")
    open_calls: dict[str, _RawCall] = {}
    items: list[Item] = []
    for n, raw in lines(text):
        if not raw.strip():
            continue
        match = _RAW.fullmatch(raw.strip())
        if match is None:
            raise LogFormatError(n, "expected a libpcscspy line (THREAD@...)")
        thread, payload = match.group(1), match.group(2)
        call = open_calls.get(thread)
        enter = _ENTER.fullmatch(payload.strip())
        if enter is not None:
            if call is not None:
                raise LogFormatError(
                    n, f"a call starts before {call.name} (line {call.line}) returned"
                )
            start = int(enter.group(1)) + int(enter.group(2)) / 1e6
            open_calls[thread] = _RawCall(n, enter.group(3), start)
            continue
        if call is None:
            raise LogFormatError(n, "a line outside any call ('>|sec|usec|Function' first)")
        ret = _RETURN.fullmatch(payload.strip())
        if ret is None:
            call.args.append(payload.strip())
            call.where.append(n)
            continue
        del open_calls[thread]
        if ret.group(3) != call.name:
            raise LogFormatError(n, f"{ret.group(3)} returns, but {call.name} was called")
        end = int(ret.group(1)) + int(ret.group(2)) / 1e6
        item = _raw_call(call, int(ret.group(5), 16), ret.group(4), end - call.start, log)
        if item is not None:
            items.append(item)
    for call in open_calls.values():
        command = _unanswered(call) if call.name == "SCardTransmit" else None
        if command is not None:
            items.append(Exchange(call.line, command, None, _ENDS, call.start))
    log.items = sorted(items, key=lambda x: x.line)
    return _checked(log)


#: SCardTransmit's argument lines -> where its command and response lengths are. pcsc-lite
#: 1.9.9 (Debian 12) logs hCard, the send PCI (2 lines), the command, the receive PCI (2),
#: the response; later versions leave the PCIs out (hCard, command, response).
_TRANSMIT_ARGS = {9: (3, 7), 5: (1, 3)}


def _raw_buffer(call: _RawCall, at: int, what: str) -> bytes:
    """The buffer whose length line is ``args[at]`` and whose hex line follows it."""
    try:
        size = int(call.args[at], 16)
    except ValueError:
        raise LogFormatError(
            call.where[at], f"{call.name}: {what}'s length is not a number"
        ) from None
    line = call.where[at + 1]
    data = hex_bytes(call.args[at + 1], line, f"{call.name}: {what}")
    if len(data) != size:
        raise LogFormatError(line, f"{call.name}: {what} has {len(data)} bytes, not {size}")
    return data


def _unanswered(call: _RawCall) -> bytes | None:
    """The command of a transmit the log ends inside, in either layout, if it got that far."""
    for at in sorted({send for send, _ in _TRANSMIT_ARGS.values()}):
        if len(call.args) > at + 1:
            try:
                return _raw_buffer(call, at, "the command")
            except LogFormatError:
                continue
    return None


def _raw_call(call: _RawCall, rv: int, text: str, seconds: float, log: ParsedLog) -> Item | None:
    args, name = call.args, call.name
    if name == "SCardTransmit":
        if len(args) not in _TRANSMIT_ARGS:
            raise LogFormatError(call.line, "SCardTransmit: expected 5 or 9 argument lines")
        send, recv = _TRANSMIT_ARGS[len(args)]
        command = _raw_buffer(call, send, "the command")
        if rv:
            return Exchange(
                call.line, command, None, f"{text.strip()} (0x{rv:08X})", call.start, seconds
            )
        response = _raw_buffer(call, recv, "the response")
        return Exchange(call.line, command, response, None, call.start, seconds)
    if rv:
        return None
    if name == "SCardConnect" and len(args) >= 2 and log.reader is None:
        log.reader = args[1]
    elif name == "SCardStatus" and len(args) == 9 and args[8] != "NULL":
        atr = hex_bytes(args[8], call.where[8], "SCardStatus: the ATR")
        log.atr = log.atr or atr
    elif name == "SCardReconnect" and len(args) >= 4 and _int(args[3]) in _RESETTING:
        return CardReset(call.line, log.atr, call.start)
    elif name in ("SCardDisconnect", "SCardEndTransaction") and len(args) >= 2:
        return CardReset(call.line, log.atr, call.start) if _int(args[1]) in _RESETTING else None
    return None


def _int(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


# --- what pcsc-spy prints --------------------------------------------------------------------

#: Each thread's lines are indented by 4 spaces more than the previous thread's; ``-t`` adds
#: `` (tN) ``.
_PREFIX = re.compile(r"((?: {4})*(?: \(t\d+\) )?)(.*)")
_NAME = re.compile(r"SCar[d]?\w+")  # pcsc-spy prints SCardControl as "SCarControl"
_ARG = re.compile(r" ([io]) (.*)")
_RESULT = re.compile(r" => (.*) \((\w+) \[0x([0-9A-Fa-f]{8})\]\)\s+\[(?:(\d+)\.(\d+)|\?\?\.\?\?)\]")
_ROW = re.compile(r" ([0-9A-Fa-f]{4}) (.*)")
_LENGTH = re.compile(r"b(Send|Recv)Length 0x([0-9A-Fa-f]+)\b.*")


def looks_like_display(sample: list[str]) -> bool:
    names = args = 0
    for s in sample:
        m = _PREFIX.fullmatch(s)
        body = m.group(2) if m else s
        if body in ("SCardEstablishContext", "SCardTransmit", "SCardConnect"):
            names += 1
        elif _ARG.fullmatch(body) or _RESULT.fullmatch(body):
            args += 1
    return names > 0 and args > 0


@dataclass
class _Shown:
    """One call as pcsc-spy shows it, while its lines come in."""

    line: int
    name: str
    lengths: dict[str, int] = field(default_factory=dict)
    buffers: dict[str, bytearray] = field(default_factory=dict)
    filling: str | None = None
    init: int | None = None  # dwInitialization / dwDisposition


def parse_display(text: str) -> ParsedLog:
    log = ParsedLog(DISPLAY)
    open_calls: dict[str, _Shown] = {}
    for n, raw in lines(text):
        m = _PREFIX.fullmatch(raw)
        assert m is not None  # the pattern matches any line
        key, body = m.group(1), m.group(2)
        call = open_calls.get(key)
        if _NAME.fullmatch(body):
            if call is not None and call.name == "SCardTransmit":
                raise LogFormatError(n, f"SCardTransmit (line {call.line}) has no result line")
            open_calls[key] = _Shown(n, body)
            continue
        if call is None:
            continue  # statistics, "Garbage:" and other lines outside calls
        arg = _ARG.fullmatch(body)
        if arg is not None:
            _shown_arg(call, arg.group(2), n, log)
            continue
        result = _RESULT.fullmatch(body)
        if result is not None:
            del open_calls[key]
            seconds = None
            if result.group(4) is not None:
                seconds = int(result.group(4)) + int(result.group(5)) / 10 ** len(result.group(5))
            item = _shown_result(call, int(result.group(3), 16), result.group(1), seconds, n, log)
            if item is not None:
                log.items.append(item)
            continue
        if call.name == "SCardTransmit":
            raise LogFormatError(n, "SCardTransmit: expected an ' i ' / ' o ' line or ' => result'")
    for call in open_calls.values():
        if call.name == "SCardTransmit" and "Send" in call.buffers:
            command = _complete(call, "Send", call.line, "the command")
            log.items.append(Exchange(call.line, command, None, _ENDS))
    log.items.sort(key=lambda x: x.line)
    return _checked(log)


def _shown_arg(call: _Shown, text: str, n: int, log: ParsedLog) -> None:
    row = _ROW.fullmatch(text)
    if row is not None and call.filling is not None:
        which = call.filling
        buf = call.buffers[which]
        if int(row.group(1), 16) != len(buf):
            raise LogFormatError(n, f"{call.name}: a hex dump row at the wrong offset")
        left = call.lengths.get(which, 0) - len(buf)
        if left <= 0:
            raise LogFormatError(n, f"{call.name}: more bytes than the buffer's length")
        buf += dump_row(row.group(2), min(16, left), n, f"{call.name}: a hex dump row")
        return
    call.filling = None
    length = _LENGTH.fullmatch(text)
    if length is not None:
        call.lengths[length.group(1)] = int(length.group(2), 16)
    elif text in ("bSendBuffer", "bRecvBuffer"):
        call.filling = text[1:5]
        call.buffers[call.filling] = bytearray()
    elif text.startswith("szReader ") and log.reader is None:
        log.reader = text[len("szReader ") :]
    elif text.startswith("bAtr ") and log.atr is None and call.name == "SCardStatus":
        log.atr = hex_bytes(text[len("bAtr ") :], n, "SCardStatus: the ATR")
    elif text.startswith(("dwInitialization ", "dwDisposition: ")):
        value = re.search(r"\(?0x([0-9A-Fa-f]+)\)?", text)
        call.init = int(value.group(1), 16) if value else None


def _complete(call: _Shown, which: str, n: int, what: str) -> bytes:
    data = bytes(call.buffers.get(which, b""))
    if which not in call.buffers or len(data) != call.lengths.get(which, -1):
        raise LogFormatError(
            n, f"SCardTransmit (line {call.line}): {what}'s hex dump is incomplete"
        )
    return data


def _shown_result(
    call: _Shown, rv: int, text: str, seconds: float | None, n: int, log: ParsedLog
) -> Item | None:
    if call.name == "SCardTransmit":
        command = _complete(call, "Send", n, "the command")
        if rv:
            return Exchange(call.line, command, None, f"{text.strip()} (0x{rv:08X})", None, seconds)
        response = _complete(call, "Recv", n, "the response")
        return Exchange(call.line, command, response, None, None, seconds)
    if (
        not rv
        and call.init in _RESETTING
        and call.name
        in (
            "SCardReconnect",
            "SCardDisconnect",
            "SCardEndTransaction",
        )
    ):
        return CardReset(call.line, log.atr)
    return None


def _checked(log: ParsedLog) -> ParsedLog:
    for x in log.exchanges:
        if len(x.command) < 4:
            raise LogFormatError(x.line, "SCardTransmit: a command shorter than its 4 header bytes")
        if x.response is not None and len(x.response) < 2:
            raise LogFormatError(x.line, "SCardTransmit: an answer without its 2 status bytes")
    if not log.exchanges:
        raise LogFormatError(None, "no SCardTransmit call in the log: no APDU to import")
    return log
