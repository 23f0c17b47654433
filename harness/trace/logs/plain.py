"""The lowest common denominator: ``> hex`` for a command, ``< hex`` for the card's answer.

One APDU or response per line, in order; each ``<`` answers the ``>`` before it. Bytes may be
written together or separated by spaces or colons; ``>>`` / ``<<`` work too. Blank lines and
lines starting with ``#`` are skipped, and a line ``# reset`` (or ``# reset 3B...``, with
the ATR) says the card was reset there. A command left without an answer (the last line, or
one followed by another command) becomes a command the card never answered.
"""

from __future__ import annotations

import re

from harness.trace.logs.base import CardReset, Exchange, LogFormatError, ParsedLog, hex_bytes, lines

__all__ = ["FORMAT", "looks_like", "parse"]

FORMAT = "plain"

_LINE = re.compile(r"(>>?|<<?)\s*(.*)")
_RESET = re.compile(r"#\s*reset\b\s*(.*)", re.IGNORECASE)
NO_ANSWER = "no answer in the log"


def looks_like(sample: list[str]) -> bool:
    """The first meaningful line of *sample* is a ``>`` command and most are ``>`` / ``<``
    (so that a stray line gets its line number, not "unknown format")."""
    meaningful = [s.strip() for s in sample if s.strip() and not s.strip().startswith("#")]
    if not meaningful or meaningful[0][0] != ">":
        return False
    return 2 * sum(1 for s in meaningful if s[0] in "<>") >= len(meaningful)


def parse(text: str) -> ParsedLog:
    log = ParsedLog(FORMAT)
    pending: tuple[int, bytes] | None = None
    for n, raw in lines(text):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            reset = _RESET.fullmatch(line)
            if reset:
                if pending is not None:
                    log.items.append(Exchange(pending[0], pending[1], None, NO_ANSWER))
                    pending = None
                atr = hex_bytes(reset.group(1), n, "the ATR") if reset.group(1) else None
                log.items.append(CardReset(n, atr))
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise LogFormatError(n, "expected '> command hex', '< response hex' or '# comment'")
        if match.group(1)[0] == ">":
            if pending is not None:
                log.items.append(Exchange(pending[0], pending[1], None, NO_ANSWER))
            command = hex_bytes(match.group(2), n, "the command")
            if len(command) < 4:
                raise LogFormatError(n, "a command needs at least its 4 header bytes")
            pending = (n, command)
        else:
            if pending is None:
                raise LogFormatError(n, "a response with no command before it")
            response = hex_bytes(match.group(2), n, "the response")
            if len(response) < 2:
                raise LogFormatError(n, "a response needs at least its 2 status bytes")
            log.items.append(Exchange(pending[0], pending[1], response))
            pending = None
    if pending is not None:
        log.items.append(Exchange(pending[0], pending[1], None, NO_ANSWER))
    if not log.exchanges:
        raise LogFormatError(None, "no '>' command line in the log")
    return log
