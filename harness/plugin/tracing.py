"""The trace of one test: every APDU its card saw, redacted, and what to do with it.

The plugin gives each test's card a :class:`~harness.trace.recorder.TraceLog` (an in-process
card through a :class:`~harness.trace.recorder.RecordingTransport`, a vpcd card through the
server's observer). On failure the decoded trace and the ``trace explain`` findings become a
section of the failure report; ``--myna-trace-dir`` keeps one JSON Lines file per test.
:func:`assert_no_phantom_decrements` fails a test whose app spent a try the user did not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from emulator.card import Card
from emulator.errors import CardPoweredOff
from emulator.vpcd import VpcdEvent, VpcdObserver
from harness.cli.trace import format_trace, printable
from harness.trace.explain import (
    PIN_LABELS,
    Cause,
    Explanation,
    Finding,
    explain,
    format_explanation,
)
from harness.trace.recorder import TraceLog, write_trace
from harness.trace.records import Cmd, TraceRecord

#: The title of the failure report's section (terminal and JUnit XML).
SECTION = "myna-hil trace"
#: The causes a test may produce on purpose: a value the card did not accept.
ALLOWED_BY_DEFAULT: tuple[Cause, ...] = (Cause.USER_WRONG,)


class TestTrace:
    """The traces of one test's cards (usually one), by card label."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.logs: dict[str, TraceLog] = {}
        #: Set once the trace is in a failure report (a failed call and a failed teardown
        #: get it once).
        self.reported = False

    def add(self, label: str, log: TraceLog) -> TraceLog:
        self.logs[label] = log
        return log

    @property
    def records(self) -> list[TraceRecord]:
        """The records of the test's card (the first one, when it had several)."""
        return next(iter(self.logs.values())).records if self.logs else []

    @property
    def apdus(self) -> int:
        return sum(log.apdus for log in self.logs.values())

    def explain(self) -> Explanation:
        return explain(self.records)

    def assert_no_phantom_decrements(self, *, allow: Iterable[Cause] = ALLOWED_BY_DEFAULT) -> None:
        for log in self.logs.values():
            assert_no_phantom_decrements(log.records, allow=allow)

    def report(self) -> str:
        """The decoded trace and the forensics of every card, for a failure report."""
        parts = []
        for label, log in self.logs.items():
            head = f"-- {label}: {log.apdus} APDUs" if len(self.logs) > 1 else ""
            body = format_trace(log.records) + "\n" + format_explanation(explain(log.records))
            parts.append("\n".join(x for x in (head, body) if x))
        return printable("\n".join(parts))

    def save(self, directory: Path) -> list[Path]:
        """One JSON Lines file per card in *directory* (names from the node id)."""
        out = []
        for n, (label, log) in enumerate(self.logs.items()):
            suffix = "" if n == 0 else f"-{safe_name(label)}"
            out.append(
                write_trace(
                    directory / f"{trace_file_stem(self.nodeid)}{suffix}.jsonl", log.records
                )
            )
        return out


def safe_name(text: str) -> str:
    """*text* in the characters every file system takes: ``A-Z a-z 0-9 . _ -``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "test"


def trace_file_stem(nodeid: str, limit: int = 120) -> str:
    """A file name (no suffix) for a test's trace: its node id in safe characters and a
    short hash of the node id, so that two ids that read alike never share a file."""
    digest = hashlib.sha256(nodeid.encode("utf-8")).hexdigest()[:8]
    return f"{safe_name(nodeid)[:limit]}-{digest}"


def phantom_findings(
    records: Sequence[TraceRecord], allow: Iterable[Cause] = ALLOWED_BY_DEFAULT
) -> list[Finding]:
    """The decrements in *records* whose cause is not in *allow*."""
    allowed = set(allow)
    return [f for f in explain(records).findings if f.decrement and f.cause not in allowed]


def assert_no_phantom_decrements(
    records: Sequence[TraceRecord], *, allow: Iterable[Cause] = ALLOWED_BY_DEFAULT
) -> None:
    """Fail (``AssertionError``) if a try was spent for any cause but *allow* (by default a
    wrong value: the test's own). The message names each PIN, the command and the cause,
    never a value (traces hold none)."""
    bad = phantom_findings(records, allow)
    if not bad:
        return
    names = {r.i: r.name or "command" for r in records if isinstance(r, Cmd)}
    lines = [f"{len(bad)} try/tries spent that the user did not spend:"]
    for f in bad:
        left = "" if f.tries_left is None else f", {f.tries_left} left"
        lines.append(
            f"  {PIN_LABELS.get(f.pin, f.pin)} ({f.pin}): #{f.index} {names.get(f.index, '?')} "
            f"in {f.app} -> {f.sw}{left}: {f.cause.value}: {f.detail}"
        )
    raise AssertionError("\n".join(lines))


def vpcd_observer(log: TraceLog, atr: Callable[[], bytes]) -> VpcdObserver:
    """A :class:`~emulator.vpcd.VpcdServer` observer that records a served card's traffic
    into *log* (the server calls it with the card's lock held; *atr* gives the card's ATR)."""

    def observe(event: VpcdEvent) -> None:
        if event.kind == "exchange":
            i = log.command(event.command).i
            if event.response is None:
                log.lost(i, event.command, "card lost power", event.latency)
            else:
                log.answer(i, event.command, event.response, event.latency)
        elif event.kind in ("power-on", "reset"):
            log.reset(atr())

    return observe


class RecordedCard:
    """*card*, with every APDU and power-up it gets recorded into *log*: for callers that
    drive the card object itself (the in-process pyscard reader) rather than a transport.
    Everything else is the card's own (controls, state)."""

    def __init__(self, card: Card, log: TraceLog) -> None:
        self._card = card
        self._log = log

    def transmit(self, apdu: bytes) -> bytes:
        return self._log.recorded(self._card.transmit, apdu, CardPoweredOff)

    def power_on(self) -> bytes:
        atr = self._card.power_on()
        self._log.reset(atr)
        return atr

    def reset(self) -> bytes:
        atr = self._card.reset()
        self._log.reset(atr)
        return atr

    def __getattr__(self, name: str) -> object:
        return getattr(self._card, name)
