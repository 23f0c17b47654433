"""A transport wrapper that records every exchange as a trace (JSON Lines).

Record types (one JSON object per line, ``seq`` increasing):

- ``meta``  first line: format, version, scenario, transport, ATR, whether redacted.
- ``cmd``   a command to the card: ``i`` (APDU index), ``hex``, ``name``, ``app`` / ``ef`` /
  ``pin`` as far as the selection is known, ``fp`` / ``fpv`` for secret data.
- ``rsp``   the card's answer to command ``i``: ``hex``, ``sw``, ``sw_name``, ``latency_ms``.
- ``lost``  no answer to command ``i``: the card lost power / went away.
- ``reset`` the card was reset (new ATR).
- ``note``  an actor's observation (what an app showed, a kiosk's decision), no APDU.
- ``control`` a test control acted on the card (``actor``, ``action``, maybe ``pin`` /
  ``tries``): the control panel's clicks. Never a PIN value.

Every record has ``time`` (wall clock, UTC) and, when the recorder has a scenario clock,
``clock`` (scenario time). Secrets in VERIFY / CHANGE / RESET RETRY COUNTER / JICSAP CHANGE
KEY data are replaced by ``<redacted N bytes>`` unless ``redact=False``.

In memory a record is a frozen dataclass (:mod:`harness.trace.records`); :func:`read_trace`
returns those, checked and migrated from older versions, and :func:`write_trace` writes
their JSON objects unchanged.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from emulator.grammar import sw_name
from emulator.redact import has_secret_data, is_secret, redact_command
from harness.clock import Clock
from harness.trace.decode import Tracker, name_of, parse
from harness.trace.fingerprint import DESCRIPTION, Fingerprinter
from harness.trace.records import Cmd, Control, Lost, Meta, Note, Reset, Rsp, TraceRecord
from harness.trace.validate import TRACE_FORMAT, TRACE_VERSION, TraceFormatError, parse_trace
from harness.transport import TRAFFIC, CardRemovedError, Transport

logger = logging.getLogger(__name__)

_R = TypeVar("_R", bound=TraceRecord)

#: What a command record says of the command itself: ``name``, ``hex`` (redacted), ``fp``,
#: ``fpv``.
_Described = tuple[str, str, "str | None", "dict[str, str] | None"]

#: One exchange whose records :class:`TraceLog` has not built yet: ``i``, the command's
#: ``seq``, command, answer, seconds it took, ``perf_counter`` and ``time_ns`` at the answer,
#: the scenario clock then (``None``: no clock), and for a command that may carry a PIN its
#: description made at once (the command is then its 4-byte header only).
_Exchange = tuple[
    int, int, bytes, bytes, float, float, int, "dt.datetime | None", "_Described | None"
]


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a record happened, as a log made elsewhere tells it (either may be unknown)."""

    time: str | None  # wall clock, UTC, ISO 8601
    t: float | None  # seconds since the log's first record


class TraceLog:
    """The records of one card's traffic, built from raw exchanges (redacted as it goes).

    :class:`RecordingTransport` fills one around a transport; the control panel fills one
    from a vpcd server's observer. This is the one place that builds records: redaction,
    fingerprints and stamps happen here. The fingerprint key lives only in this object (see
    :mod:`harness.trace.fingerprint`).

    Threads: :meth:`exchange` (and :meth:`recorded`) may be called from several threads
    while another reads :attr:`records`; the other recording methods from one thread at a
    time (the one that drives the card, or the vpcd server's).
    """

    def __init__(
        self,
        transport: str,
        atr: bytes | None,
        *,
        redact: bool = True,
        clock: Clock | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.redact = redact
        self.clock = clock
        self._records: list[TraceRecord] = []
        #: What came after the last of :attr:`_records`, oldest first: exchanges recorded
        #: by :meth:`exchange` whose records are not built yet, and the records made since
        #: the first of them.
        self._pending: list[_Exchange | TraceRecord] = []
        #: :meth:`exchange` against the building of its records: a card an app drives from
        #: several threads may be recorded while the test reads the trace.
        self._pending_lock = threading.Lock()
        #: When the next records happened, for a log made elsewhere (``trace import``):
        #: ``None`` stamps them now.
        self.when: Stamp | None = None
        self.apdus = 0
        self._seq = 0  # not len(records): a long-running log may drop old records
        self._fingerprints = Fingerprinter()
        self._tracker = Tracker()
        self._t0 = time.perf_counter()
        # The text of the last stamps made: the scenario clock stands still between its
        # steps, and the wall clock's date and time of day change once a second.
        self._clock_at: dt.datetime | None = None
        self._clock_text: str | None = None
        self._second = -1
        self._second_text = ""
        fields = dict(meta or {})
        self._append(
            Meta(
                format=TRACE_FORMAT,
                version=TRACE_VERSION,
                transport=transport,
                atr=atr,
                redacted=redact,
                fingerprint=DESCRIPTION,
                scenario=fields.pop("scenario", None),
                profile=fields.pop("profile", None),
                extra=fields,
                **self._stamp(),
            )
        )

    @property
    def records(self) -> list[TraceRecord]:
        """Every record so far, in order (building those :meth:`exchange` deferred)."""
        self._build_pending()
        return self._records

    def exchange(self, apdu: bytes, rsp: bytes, seconds: float) -> int:
        """Record the command *apdu* and its answer *rsp*, which took *seconds*; the
        command's index ``i``.

        The same two records as :meth:`command` then :meth:`answer` (the command stamped
        *seconds* before the answer), built when :attr:`records` is next read: a run that
        never looks at its trace pays a tuple per exchange. A command that may carry a PIN
        is redacted and fingerprinted at once, so that no secret waits in memory.
        """
        if self.when is not None:  # a log made elsewhere has its own stamps
            i = self.command(apdu).i
            self.answer(i, apdu, rsp, seconds)
            return i
        now = time.perf_counter()
        clock = None if self.clock is None else self.clock.now()
        described = None
        if has_secret_data(apdu):
            described, apdu = self._describe(apdu), apdu[:4]
        with self._pending_lock:
            i = self.apdus
            self.apdus += 1
            seq = self._seq
            self._seq += 2
            wall_ns = time.time_ns()
            self._pending.append((i, seq, apdu, rsp, seconds, now, wall_ns, clock, described))
        return i

    def recorded(self, send: Callable[[bytes], bytes], apdu: bytes, lost: type[Exception]) -> bytes:
        """``send(apdu)``, recorded: the exchange (:meth:`exchange`), or when *send* raises
        *lost* (the card lost power or went away) the command and its loss, then the
        error again."""
        start = time.perf_counter()
        try:
            rsp = send(apdu)
        except lost as exc:
            self.lost(self.command(apdu).i, apdu, str(exc), time.perf_counter() - start)
            raise
        self.exchange(apdu, rsp, time.perf_counter() - start)
        return rsp

    def command(self, apdu: bytes) -> Cmd:
        """Record a command about to be sent; its record (``i`` is its index)."""
        i = self.apdus
        self.apdus += 1
        self._build_pending()
        return self._append(self._command_record(i, apdu, self._stamp()))

    def _describe(self, apdu: bytes) -> _Described:
        """The command's name, its hex as recorded (redacted) and its fingerprints."""
        fp: str | None = None
        fpv: dict[str, str] | None = None
        cmd = parse(apdu)
        if cmd is not None and is_secret(cmd):
            fp = self._fingerprints.fp(cmd.data)
            fpv = self._fingerprints.variants(cmd.data) or None
        text = redact_command(apdu) if self.redact else apdu.hex().upper()
        return name_of(apdu, cmd), text, fp, fpv

    def _command_record(
        self, i: int, apdu: bytes, stamp: dict[str, Any], described: _Described | None = None
    ) -> Cmd:
        """The record of command *i*, addressed by the selection so far (the tracker must
        have seen every command before it); *described*: made already."""
        target = self._tracker.target(apdu)
        name, text, fp, fpv = described or self._describe(apdu)
        return Cmd(
            i=i,
            name=name,
            hex=text,
            app=target.app or None,
            ef=target.ef,
            pin=target.pin or None,
            fp=fp,
            fpv=fpv,
            **stamp,
        )

    def answer(self, i: int, apdu: bytes, rsp: bytes, seconds: float | None) -> Rsp:
        """Record the answer *rsp* to command *i* (*apdu*), *seconds* after it was sent
        (``None``: not known)."""
        self._build_pending()
        return self._append(self._answer_record(i, apdu, rsp, seconds, self._stamp()))

    def _answer_record(
        self, i: int, apdu: bytes, rsp: bytes, seconds: float | None, stamp: dict[str, Any]
    ) -> Rsp:
        sw = rsp[-2] << 8 | rsp[-1] if len(rsp) >= 2 else 0
        self._tracker.update(apdu, sw)
        return Rsp(
            i=i,
            hex=rsp.hex().upper(),
            sw=sw,
            sw_name=_sw_text(sw),
            latency_ms=_ms(seconds),
            **stamp,
        )

    def _build_pending(self) -> None:
        """Build the deferred exchanges' records, if any (before anything reads the records
        or moves the selection)."""
        if not self._pending:
            return
        with self._pending_lock:  # one builder at a time, in order
            pending, self._pending = self._pending, []
            for item in pending:
                if isinstance(item, tuple):
                    self._build(item)
                else:
                    self._records.append(item)

    def _build(self, exchange: _Exchange) -> None:
        """Append the two records of one exchange (see :meth:`exchange`)."""
        i, seq, apdu, rsp, seconds, now, wall_ns, clock, described = exchange
        clock_text = None if clock is None else self._clock_text_of(clock)
        t = now - self._t0
        sent = {
            "seq": seq,
            "time": self._wall_text(wall_ns - int(seconds * 1e9)),
            "t": round(t - seconds, 6),
            "clock": clock_text,
        }
        answered = {
            "seq": seq + 1,
            "time": self._wall_text(wall_ns),
            "t": round(t, 6),
            "clock": clock_text,
        }
        self._records.append(self._command_record(i, apdu, sent, described))
        self._records.append(self._answer_record(i, apdu, rsp, seconds, answered))

    def lost(self, i: int, apdu: bytes, error: str, seconds: float | None) -> Lost:
        """Record that command *i* (*apdu*) got no answer: the card lost power / went away."""
        self._build_pending()
        self._tracker.update(apdu, None)
        return self._append(Lost(i=i, error=error, latency_ms=_ms(seconds), **self._stamp()))

    def reset(self, atr: bytes) -> Reset:
        """Record a reset or power-on (the selection is gone)."""
        self._build_pending()
        self._tracker.reset()
        return self._append(Reset(atr=atr, **self._stamp()))

    def note(self, actor: str, event: str, **fields: Any) -> Note:
        """Record what an actor did or showed (never pass a PIN value here)."""
        return self._append(Note(actor=actor, event=event, fields=fields, **self._stamp()))

    def control(
        self, actor: str, action: str, *, pin: str | None = None, tries: int | None = None
    ) -> Control:
        """Record a test control acting on the card (*pin* is a PIN's name, never a value)."""
        return self._append(
            Control(actor=actor, action=action, pin=pin, tries=tries, **self._stamp())
        )

    def trim(self, keep: int) -> None:
        """Drop the oldest records but the meta record, keeping the last *keep* (``seq``
        goes on counting)."""
        records = self.records
        if len(records) > keep + 1:
            del records[1 : len(records) - keep]

    def _append(self, rec: _R) -> _R:
        """Append *rec* after everything so far (notes and controls wait behind deferred
        exchanges; whatever reads or moves the selection builds those first)."""
        (self._pending or self._records).append(rec)
        self._seq += 1
        return rec

    def _stamp(self) -> dict[str, Any]:
        """``seq``, ``time``, ``t`` and ``clock`` of the record about to be appended."""
        if self.when is not None:
            return {"seq": self._seq, "time": self.when.time, "t": self.when.t, "clock": None}
        return {
            "seq": self._seq,
            "time": self._wall_text(time.time_ns()),
            "t": round(time.perf_counter() - self._t0, 6),
            "clock": None if self.clock is None else self._clock_text_of(self.clock.now()),
        }

    def _clock_text_of(self, now: dt.datetime) -> str | None:
        """*now* on the scenario clock as ISO 8601 (the clock stands still between its
        steps: the text is made once per step)."""
        if now is not self._clock_at:
            self._clock_at, self._clock_text = now, now.isoformat()
        return self._clock_text

    def _wall_text(self, wall_ns: int) -> str:
        """*wall_ns* (``time.time_ns()``), UTC, ISO 8601 to the microsecond: what
        ``datetime.now(UTC).isoformat()`` says, without building a datetime for every
        record."""
        second, ns = divmod(wall_ns, 1_000_000_000)
        if second != self._second:
            moment = dt.datetime.fromtimestamp(second, dt.UTC)
            self._second, self._second_text = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{ns // 1000:06d}+00:00"


class RecordingTransport(Transport):
    """Wraps *inner*; every exchange is appended to :attr:`records` (and nothing else changes).

    *clock* is the scenario's clock for the ``clock`` field. The records are built by
    :attr:`log` (a :class:`TraceLog`).
    """

    def __init__(
        self,
        inner: Transport,
        *,
        redact: bool = True,
        clock: Clock | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.inner = inner
        self.name = f"recording:{inner.name}"
        self.physical = inner.physical
        self.redact = redact or inner.physical  # traces from a physical card: always redacted
        self.clock = clock
        self.log = TraceLog(inner.name, inner.atr, redact=self.redact, clock=clock, meta=meta)

    @property
    def records(self) -> list[TraceRecord]:
        return self.log.records

    @property
    def apdus(self) -> int:
        return self.log.apdus

    # --- Transport -------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> bytes:
        traffic = logger.isEnabledFor(TRAFFIC)
        if traffic:
            logger.log(TRAFFIC, "> %s", redact_command(apdu))  # logs are redacted, always
        rsp = self.log.recorded(self.inner.transmit, apdu, CardRemovedError)
        if traffic:
            logger.log(TRAFFIC, "< %s", rsp.hex().upper())
        return rsp

    def reset(self) -> bytes:
        atr = self.inner.reset()
        self.log.reset(atr)
        return atr

    def close(self) -> None:
        self.inner.close()

    # --- notes and output --------------------------------------------------------------------

    def note(self, actor: str, event: str, **fields: Any) -> None:
        """Record what an actor did or showed (never pass a PIN value here)."""
        self.log.note(actor, event, **fields)

    def save(self, path: str | Path) -> Path:
        return write_trace(path, self.records)


@functools.lru_cache(maxsize=256)
def _sw_text(sw: int) -> str:
    """A response's ``sw_name``: the status word's name without its hex."""
    return sw_name(sw).partition(" ")[2]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def note(transport: Transport, actor: str, event: str, **fields: Any) -> None:
    """Record a note if *transport* records (actors call this on any transport)."""
    recorder = getattr(transport, "note", None)
    if callable(recorder):
        recorder(actor, event, **fields)


def dumps(records: Iterable[TraceRecord]) -> str:
    """*records* as the text of a trace file (one JSON object a line)."""
    return "".join(json.dumps(rec.to_json(), ensure_ascii=False) + "\n" for rec in records)


def write_trace(path: str | Path, records: Iterable[TraceRecord]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(records), encoding="utf-8")
    return path


def read_trace(path: str | Path) -> list[TraceRecord]:
    """Load a trace as typed records, every record checked and brought to the current
    version (:mod:`harness.trace.validate`); raises :class:`TraceFormatError` naming the line
    and the field on bad input."""
    return parse_trace(Path(path))


__all__ = [
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "RecordingTransport",
    "Stamp",
    "TraceFormatError",
    "TraceLog",
    "TraceRecord",
    "dumps",
    "note",
    "read_trace",
    "write_trace",
]
