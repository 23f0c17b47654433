"""The tap: a guarded relay between an unmodified PC/SC app and a card in a reader.

The tap puts a virtual card into a vpcd slot (``emulator.vpcd.VpcdServer``, the server
``myna-emu serve`` uses) whose every APDU is forwarded to the card in a named reader, and
answers with what that card answered. Along the way it

- records every exchange as a redacted trace (:class:`~harness.trace.recorder.TraceLog`:
  fingerprints included, so ``myna-hil trace explain`` tells the causes apart);
- holds the tries floor (:mod:`harness.hil.floor`): a command that could leave a PIN with
  fewer than ``floor`` tries is answered :data:`~harness.hil.floor.REFUSAL_SW` and never
  reaches the card. Nothing but what the app sent is sent, except the floor's counter query
  and the resets that mirror the virtual card's power;
- mirrors the card: inserted in the reader -> inserted in the slot; removed (or swapped)
  -> removed; the slot's power on / off / reset -> a reset of the card in the reader.

:class:`TapRelay` is the card side (no vpcd, no threads: testable in-process);
:class:`Tap` adds the vpcd server and the presence watch. Neither imports pyscard: the
reader comes in as a :class:`~harness.transport.Transport` and a :class:`PresenceWatch`.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from emulator.errors import CardPoweredOff
from emulator.vpcd import DEFAULT_HOST, VpcdEvent, VpcdServer
from harness.hil.floor import REFUSAL_SW, Refusal, TriesFloor
from harness.trace.explain import REFUSED_EVENT, TAP_ACTOR
from harness.trace.recorder import TraceLog, dumps
from harness.trace.records import Cmd, Lost, Rsp
from harness.transport import Transport, TransportError

logger = logging.getLogger(__name__)

__all__ = [
    "HISTORY",
    "PresenceInfo",
    "PresenceWatch",
    "Tap",
    "TapEvent",
    "TapRelay",
    "TapStats",
    "TraceFile",
    "percentile",
]

#: How many of the app's previous commands a refusal names.
HISTORY = 8
#: How often the reader's presence is looked at when nothing changes (seconds).
POLL = 0.2

Exchange = tuple[Cmd, Rsp | Lost]


@dataclass(frozen=True, slots=True)
class TapEvent:
    """What the tap did, for a live view.

    ``kind``: ``exchange`` (an app's command, forwarded and answered), ``query`` (the
    floor's own counter query), ``refused`` (not forwarded; ``refusal`` says why and
    ``history`` holds the app's previous commands), ``lost`` (no answer: the card went
    away), ``inserted`` / ``removed`` (the card in the reader, mirrored to the slot),
    ``power-on`` / ``power-off`` / ``reset`` (the slot's power, mirrored as a reset),
    ``slot`` (the virtual card entered or left the slot: ``detail``), ``problem``.
    Records are redacted; nothing here holds a PIN.
    """

    kind: str
    cmd: Cmd | None = None
    answer: Rsp | Lost | None = None
    refusal: Refusal | None = None
    history: tuple[Exchange, ...] = ()
    detail: str = ""
    overhead: float = 0.0  # seconds the tap itself spent on the command (not the card's)


Listener = Callable[[TapEvent], None]


@dataclass
class TapStats:
    """Counts and latencies of one tap session."""

    commands: int = 0  # from the app
    forwarded: int = 0
    refused: int = 0
    queries: int = 0  # the floor's own counter queries
    lost: int = 0
    card_ms: list[float] = field(default_factory=list)  # the card's time per exchange
    overhead_us: list[float] = field(default_factory=list)  # the tap's own time per command


def percentile(values: list[float], q: int) -> float | None:
    """The *q*-th percentile of *values* (``None`` when there are none)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class TraceFile:
    """A trace written as it grows, one JSON line per record. The tap writes what is new
    every :data:`POLL` seconds (off the path of the app's commands) and at the end: a tap
    stopped by anything short of a power cut leaves a complete trace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._written = 0

    def write(self, log: TraceLog) -> None:
        if self._handle is None:
            return
        new = log.records[self._written :]
        if new:
            self._handle.write(dumps(new))
            self._handle.flush()
            self._written += len(new)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class TapRelay:
    """The card side of the tap: floor, forwarding, trace. Not thread-safe: one caller at a
    time (the vpcd server's card lock sees to it).

    *physical* is the reader's transport; *on_lost* is told when its card went away inside
    an exchange (the tap pulls the virtual card). After that, :attr:`attached` is False
    until :meth:`attach` connects again.
    """

    def __init__(
        self,
        physical: Transport,
        log: TraceLog,
        *,
        floor: TriesFloor | None = None,
        listener: Listener | None = None,
        trace_file: TraceFile | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.physical = physical
        self.log = log
        self.floor = floor if floor is not None else TriesFloor()
        self.listener = listener
        self.trace_file = trace_file
        self.on_lost = on_lost
        self.stats = TapStats()
        self.attached = False
        self._history: deque[Exchange] = deque(maxlen=HISTORY)
        self._query_time = 0.0  # the card's time on the floor's queries for this command

    # -- the card in the reader -----------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.physical.atr

    def attach(self) -> bytes:
        """Connect to the card in the reader (a fresh power-up); its ATR. Raises
        :class:`TransportError` when there is none."""
        atr = self.physical.reset()
        self.attached = True
        self.floor.forget()
        self.log.reset(atr)
        self.emit(TapEvent("inserted", detail=atr.hex().upper()))
        return atr

    def detach(self, reason: str) -> None:
        """The card left the reader (or was swapped): forget everything about it."""
        if not self.attached:
            return
        self.attached = False
        self.floor.forget()
        self.log.note(TAP_ACTOR, "removed", reason=reason)
        self.emit(TapEvent("removed", detail=reason))

    def _lose(self, exc: Exception) -> CardPoweredOff:
        """The card went away inside an exchange: detach, tell the tap, and the exception
        that makes the vpcd server pull the virtual card."""
        reason = f"the card went away ({exc})"
        self.detach(reason)
        if self.on_lost is not None:
            self.on_lost(reason)
        return CardPoweredOff(reason)

    # -- the virtual card (emulator.vpcd.VirtualCard) -------------------------------------

    def power(self, kind: str) -> bytes:
        """The slot's power-on, power-off or reset: reset the card in the reader (its
        security state goes, as the app's does); the ATR."""
        if not self.attached:
            return self.atr
        try:
            atr = self.physical.reset()
        except TransportError as exc:
            self._lose(exc)
            return self.atr
        self.floor.forget()
        self.log.reset(atr)
        self.emit(TapEvent(kind))
        return atr

    def transmit(self, apdu: bytes) -> bytes:
        """The answer to the app's *apdu*: the card's, or the refusal. Raises
        :class:`CardPoweredOff` when the card is gone (the vpcd server pulls the virtual card:
        the app sees it removed, as with a card pulled from a reader)."""
        start = time.perf_counter()
        if not self.attached:  # between a removal and the tap pulling its virtual card
            self.log.note(TAP_ACTOR, "not-sent", reason="no card in the reader")
            if self.on_lost is not None:
                self.on_lost("no card in the reader")
            raise CardPoweredOff("no card in the reader")
        self.stats.commands += 1
        self._query_time = 0.0
        try:
            refusal = self.floor.check(apdu, self._query)
        except TransportError as exc:
            raise self._lose(exc) from None
        cmd = self.log.command(apdu)
        if refusal is not None:
            self._refuse(apdu, cmd, refusal, start)
            return REFUSAL_SW.to_bytes(2, "big")
        sent = time.perf_counter()
        try:
            rsp = self.physical.transmit(apdu)
        except TransportError as exc:
            card_time = time.perf_counter() - sent
            self.floor.observe(apdu, None)
            lost = self.log.lost(cmd.i, apdu, str(exc), card_time)
            self.stats.lost += 1
            self._history.append((cmd, lost))
            self.emit(TapEvent("lost", cmd, lost))
            raise self._lose(exc) from None
        card_time = time.perf_counter() - sent
        self.floor.observe(apdu, rsp)
        answer = self.log.answer(cmd.i, apdu, rsp, card_time)
        self.stats.forwarded += 1
        self.stats.card_ms.append(card_time * 1000)
        self._history.append((cmd, answer))
        overhead = time.perf_counter() - start - card_time - self._query_time
        self.stats.overhead_us.append(overhead * 1e6)
        self.emit(TapEvent("exchange", cmd, answer, overhead=overhead))
        return rsp

    def _query(self, query: bytes) -> bytes:
        """Send the floor's counter query (an empty VERIFY: spends nothing) and record it."""
        cmd = self.log.command(query)
        sent = time.perf_counter()
        try:
            rsp = self.physical.transmit(query)
        except TransportError as exc:
            self.floor.observe(query, None)
            lost = self.log.lost(cmd.i, query, str(exc), time.perf_counter() - sent)
            self.emit(TapEvent("lost", cmd, lost))
            raise
        took = time.perf_counter() - sent
        self._query_time += took
        self.floor.observe(query, rsp)
        answer = self.log.answer(cmd.i, query, rsp, took)
        self.log.note(TAP_ACTOR, "counter-query", i=cmd.i)
        self.stats.queries += 1
        self.emit(TapEvent("query", cmd, answer))
        return rsp

    def _refuse(self, apdu: bytes, cmd: Cmd, refusal: Refusal, start: float) -> None:
        history = tuple(self._history)
        answer = self.log.answer(cmd.i, apdu, REFUSAL_SW.to_bytes(2, "big"), 0.0)
        fields: dict[str, object] = {"i": cmd.i, "floor": self.floor.floor}
        if cmd.pin is not None:
            fields["pin"] = cmd.pin
        if refusal.tries is not None:
            fields["tries"] = refusal.tries
        fields["reason"] = refusal.reason
        self.log.note(TAP_ACTOR, REFUSED_EVENT, **fields)
        self.stats.refused += 1
        self._history.append((cmd, answer))
        overhead = time.perf_counter() - start - self._query_time
        self.emit(TapEvent("refused", cmd, answer, refusal, history, overhead=overhead))

    def emit(self, event: TapEvent) -> None:
        """Tell the listener (whose failure is logged)."""
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:
            logger.exception("the tap's listener failed on a %s event", event.kind)

    def flush(self) -> None:
        """Write the trace records made since the last flush (safe beside :meth:`transmit`:
        records are appended whole)."""
        if self.trace_file is not None:
            self.trace_file.write(self.log)


class _TapCard:
    """The virtual card the vpcd server holds: every call goes to the relay."""

    def __init__(self, relay: TapRelay) -> None:
        self._relay = relay

    @property
    def atr(self) -> bytes:
        return self._relay.atr

    def power_on(self) -> bytes:
        return self._relay.power("power-on")

    def power_off(self) -> None:
        self._relay.power("power-off")

    def reset(self) -> bytes:
        return self._relay.power("reset")

    def transmit(self, apdu: bytes) -> bytes:
        return self._relay.transmit(apdu)


class PresenceInfo(Protocol):
    """A reader's card presence and its count of card events (``harness.hil.pcsc.Presence``)."""

    @property
    def present(self) -> bool: ...

    @property
    def events(self) -> int: ...


class PresenceWatch(Protocol):
    """What the tap needs to watch the reader (``harness.hil.pcsc.ReaderPresence`` fits)."""

    def wait(self, timeout: float) -> PresenceInfo: ...

    def close(self) -> None: ...


class Tap:
    """The relay served into a vpcd slot, mirroring the reader's card; :meth:`run` until
    *stop* is set (from a signal handler, say). :meth:`run` returns ``None`` after a stop,
    or why the tap had to end (pcscd or the reader went away)."""

    def __init__(
        self,
        relay: TapRelay,
        presence: PresenceWatch,
        *,
        port: int,
        host: str = DEFAULT_HOST,
        reader: str = "the reader",
    ) -> None:
        self.relay = relay
        self.presence = presence
        self.reader = reader
        self.server = VpcdServer(_TapCard(relay), host, port)
        self.server.observers.append(self._slot_event)
        relay.on_lost = self._lost
        #: After a card was lost inside an exchange: the reader's event count then. The card
        #: is attached again only once the count moves (removed, or another inserted).
        self._lost_at: int | None = None
        self._events = 0
        self._problem: str | None = None

    def _slot_event(self, event: VpcdEvent) -> None:
        if event.kind in ("inserted", "removed"):
            self.relay.emit(TapEvent("slot", detail=event.kind))

    def _lost(self, reason: str) -> None:
        self._lost_at = self._events
        self.server.eject()

    def run(self, stop: threading.Event) -> str | None:
        self.server.eject()  # out of the slot until the reader's card is attached
        thread = threading.Thread(target=self.server.serve, name="tap-vpcd", daemon=True)
        thread.start()
        why: str | None = None
        try:
            while not stop.is_set():
                try:
                    state = self.presence.wait(POLL)
                except TransportError as exc:
                    why = str(exc)
                    break
                self._follow(state)
                self.relay.flush()
        finally:
            self.server.stop()
            thread.join(timeout=10)
            with self.server.exclusive():
                self.relay.detach("the tap stopped" if why is None else why)
            self.relay.flush()
        return why

    def _follow(self, state: PresenceInfo) -> None:
        moved = state.events != self._events
        self._events = state.events
        if self.relay.attached and (not state.present or moved):
            with self.server.exclusive():
                self.relay.detach(
                    f"card removed from {self.reader!r}"
                    if not state.present
                    else f"the card in {self.reader!r} was swapped"
                )
            self.server.eject()
        if not state.present:
            self._lost_at = None
            return
        if self.relay.attached or (self._lost_at is not None and self._lost_at == state.events):
            return
        try:
            with self.server.exclusive():
                self.relay.attach()
        except TransportError as exc:
            problem = f"cannot connect to the card in {self.reader!r}: {exc}"
            if problem != self._problem:  # once, not at every poll
                self._problem = problem
                self.relay.emit(TapEvent("problem", detail=problem))
            return
        self._problem = None
        self._lost_at = None
        self.server.insert()
