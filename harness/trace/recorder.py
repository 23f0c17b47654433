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
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emulator.grammar import sw_name
from emulator.redact import is_secret, redact_command
from harness.clock import Clock
from harness.trace.decode import Tracker, command_name, parse
from harness.trace.fingerprint import DESCRIPTION, Fingerprinter
from harness.trace.validate import (
    TRACE_FORMAT,
    TRACE_VERSION,
    Record,
    TraceFormatError,
    parse_trace,
)
from harness.transport import TRAFFIC, CardRemovedError, Transport

logger = logging.getLogger(__name__)


class TraceLog:
    """The records of one card's traffic, built from raw exchanges (redacted as it goes).

    :class:`RecordingTransport` fills one around a transport; the control panel fills one
    from a vpcd server's observer. The fingerprint key lives only in this object (see
    :mod:`harness.trace.fingerprint`).
    """

    def __init__(self, transport: str, atr: bytes, *, redact: bool = True,
                 clock: Clock | None = None, meta: dict[str, Any] | None = None) -> None:
        self.redact = redact
        self.clock = clock
        self.records: list[Record] = []
        self.apdus = 0
        self._fingerprints = Fingerprinter()
        self._tracker = Tracker()
        self._t0 = time.perf_counter()
        self.append({"type": "meta", "format": TRACE_FORMAT, "version": TRACE_VERSION,
                     "transport": transport, "atr": atr.hex().upper(), "redacted": redact,
                     "fingerprint": DESCRIPTION, **(meta or {})})

    def command(self, apdu: bytes) -> Record:
        """Record a command about to be sent; its record (``i`` is its index)."""
        i = self.apdus
        self.apdus += 1
        target = self._tracker.target(apdu)
        rec: Record = {"type": "cmd", "i": i, "name": command_name(apdu)}
        rec["hex"] = redact_command(apdu) if self.redact else apdu.hex().upper()
        if target.app:
            rec["app"] = target.app
        if target.ef is not None:
            rec["ef"] = f"{target.ef:04X}"
        if target.pin:
            rec["pin"] = target.pin
        cmd = parse(apdu)
        if cmd is not None and is_secret(cmd):
            value = cmd.data
            rec["fp"] = self._fingerprints.fp(value)
            variants = self._fingerprints.variants(value)
            if variants:
                rec["fpv"] = variants
        return self.append(rec)

    def answer(self, i: int, apdu: bytes, rsp: bytes, seconds: float) -> Record:
        sw = rsp[-2] << 8 | rsp[-1] if len(rsp) >= 2 else 0
        self._tracker.update(apdu, sw)
        return self.append({"type": "rsp", "i": i, "hex": rsp.hex().upper(), "sw": f"{sw:04X}",
                            "sw_name": sw_name(sw).partition(" ")[2],
                            "latency_ms": _ms(seconds)})

    def lost(self, i: int, apdu: bytes, error: str, seconds: float) -> Record:
        self._tracker.update(apdu, None)
        return self.append({"type": "lost", "i": i, "error": error, "latency_ms": _ms(seconds)})

    def reset(self, atr: bytes) -> Record:
        self._tracker.reset()
        return self.append({"type": "reset", "atr": atr.hex().upper()})

    def append(self, rec: Record) -> Record:
        stamped: Record = {"seq": len(self.records), **rec}
        stamped["time"] = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        stamped["t"] = round(time.perf_counter() - self._t0, 6)
        if self.clock is not None:
            stamped["clock"] = self.clock.now().isoformat()
        self.records.append(stamped)
        return stamped


class RecordingTransport(Transport):
    """Wraps *inner*; every exchange is appended to :attr:`records` (and nothing else changes).

    *clock* is the scenario's clock for the ``clock`` field.
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
        self.records = self.log.records

    @property
    def apdus(self) -> int:
        return self.log.apdus

    # --- Transport -------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> bytes:
        i = self.log.command(apdu)["i"]
        logger.log(TRAFFIC, "> %s", redact_command(apdu))  # logs are redacted, always
        start = time.perf_counter()
        try:
            rsp = self.inner.transmit(apdu)
        except CardRemovedError as exc:
            self.log.lost(i, apdu, str(exc), time.perf_counter() - start)
            raise
        self.log.answer(i, apdu, rsp, time.perf_counter() - start)
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
        self.log.append({"type": "note", "actor": actor, "event": event, **fields})

    def save(self, path: str | Path) -> Path:
        return write_trace(path, self.records)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def note(transport: Transport, actor: str, event: str, **fields: Any) -> None:
    """Record a note if *transport* records (actors call this on any transport)."""
    recorder = getattr(transport, "note", None)
    if callable(recorder):
        recorder(actor, event, **fields)


def write_trace(path: str | Path, records: Iterable[Record]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")
    return path


def read_trace(path: str | Path) -> list[Record]:
    """Load a trace, every record checked (:mod:`harness.trace.validate`); raises
    :class:`TraceFormatError` naming the line and the field on bad input."""
    return parse_trace(Path(path))


__all__ = [
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "Record",
    "RecordingTransport",
    "TraceFormatError",
    "TraceLog",
    "note",
    "read_trace",
    "write_trace",
]
