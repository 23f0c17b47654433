"""Play a recorded trace back as the card, and say exactly where a new run departs from it.

The replay transport answers each command with the recorded response, after checking that
the command is the recorded one. Redacted traces are compared in their redacted form (the
header, Lc and Le of a VERIFY still have to match, the PIN cannot). The first mismatch
raises :class:`ReplayDivergence` naming the APDU index, both commands and what came before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from emulator.redact import redact_command
from harness.trace.records import Cmd, Lost, Meta, Reset, Rsp, TraceRecord
from harness.transport import CardRemovedError, Transport, TransportError

_CardEvent = Cmd | Rsp | Lost | Reset
_E = TypeVar("_E", Cmd, Reset)


class ReplayDivergence(TransportError):
    """The run sent something the trace did not record (or stopped short of it)."""

    def __init__(self, index: int, expected: str, got: str, previous: str = "") -> None:
        self.index = index
        self.expected = expected
        self.got = got
        self.previous = previous
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = [
            f"diverged at APDU #{self.index}:",
            f"  trace expected: {self.expected}",
            f"  run sent:       {self.got}",
        ]
        if self.previous:
            lines.append(f"  after:          {self.previous}")
        return "\n".join(lines)


class ReplayTransport(Transport):
    """A :class:`Transport` whose card is a recorded trace."""

    name = "replay"
    physical = False

    def __init__(self, records: Sequence[TraceRecord]) -> None:
        if not records or not isinstance(records[0], Meta):
            raise ValueError("a trace starts with its meta record")
        self.meta: Meta = records[0]
        self.redacted = self.meta.redacted is not False  # unsaid: assume redacted
        self._events: list[_CardEvent] = [r for r in records if isinstance(r, _CardEvent)]
        self._pos = 0
        self._atr = self.meta.atr or b""
        self.replayed = 0
        self._last = "start of trace"

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def finished(self) -> bool:
        return self._pos >= len(self._events)

    def remaining(self) -> int:
        """Card events of the trace not yet played."""
        return len(self._events) - self._pos

    def _next(self, want: type[_E], got: str) -> _E:
        if self.finished:
            raise ReplayDivergence(self.replayed, "end of trace", got, self._last)
        rec = self._events[self._pos]
        if not isinstance(rec, want):
            raise ReplayDivergence(self.replayed, _describe(rec), got, self._last)
        self._pos += 1
        return rec

    def transmit(self, apdu: bytes) -> bytes:
        sent = redact_command(apdu) if self.redacted else apdu.hex().upper()
        shown = redact_command(apdu)  # messages never carry a PIN, whatever the trace holds
        rec = self._next(Cmd, shown)
        if rec.hex != sent:
            self._pos -= 1
            raise ReplayDivergence(rec.i, _describe(rec), shown, self._last)
        self._last = f"#{rec.i} {rec.name or ''} {_redacted(rec.hex)}"
        answer = self._events[self._pos] if not self.finished else None
        if not isinstance(answer, Rsp | Lost) or answer.i != rec.i:
            raise ReplayDivergence(rec.i, "a recorded answer", "trace ends without one")
        self._pos += 1
        self.replayed += 1
        if isinstance(answer, Lost):
            raise CardRemovedError(f"replayed power loss at APDU #{rec.i}")
        try:
            return bytes.fromhex(answer.hex)
        except ValueError:
            raise TransportError(
                f"APDU #{rec.i}: the recorded answer (field 'hex') is not plain hex: it was "
                "normalised (a golden trace?); replay a trace recorded with 'myna-hil run --trace'"
            ) from None

    def reset(self) -> bytes:
        rec = self._next(Reset, "card reset")
        self._atr = rec.atr
        self._last = "card reset"
        return self._atr

    def check_finished(self) -> None:
        """Raise :class:`ReplayDivergence` if the run stopped before the trace did."""
        if not self.finished:
            rec = self._events[self._pos]
            raise ReplayDivergence(self.replayed, _describe(rec), "end of run", self._last)


def _redacted(hexstr: str) -> str:
    """*hexstr* of a recorded command as a message may show it (an unredacted trace's PIN
    data is redacted here; an already redacted form is kept)."""
    try:
        return redact_command(bytes.fromhex(hexstr))
    except ValueError:
        return hexstr


def _describe(rec: TraceRecord) -> str:
    if isinstance(rec, Cmd):
        return f"#{rec.i} {rec.name or ''}: {_redacted(rec.hex)}"
    if isinstance(rec, Reset):
        return "card reset"
    return f"{rec.TYPE} record"
