"""Soak: two vpcd slots at full speed for minutes; errors, latency and emulator memory.

The first slot gets ``myna-emu serve --state`` (a durable card: VERIFY writes the state
file), the second the echo card, each a child process so its RSS can be read from
``/proc/PID/status``. One thread per slot sends a fixed command mix through pcscd and checks
every answer. Pass: no error, and the emulator's RSS grew by less than 5 % between the end
of the warm-up and the end of the run.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emulator.card import Card
from emulator.echo import ECHO_ATR
from emulator.personalise import new_state
from emulator.profiles import ATRS
from harness.hil.pcsc import PcscTransport
from harness.reliability.slots import (
    EmulatorProcess,
    SlotBusyError,
    reader_for_slot,
    rss_kib,
    wait_presence,
)
from harness.transport import TransportError

__all__ = ["RSS_GROWTH_LIMIT", "Histogram", "SlotStats", "SoakResult", "run_soak"]

#: Largest tolerated growth of the emulator's RSS over the run (fraction).
RSS_GROWTH_LIMIT = 0.05
OK = b"\x90\x00"


def _sw(sw: str) -> Callable[[bytes], bool]:
    want = bytes.fromhex(sw)
    return lambda r: r == want


def _data(n: int) -> Callable[[bytes], bool]:
    return lambda r: len(r) == n + 2 and r[-2:] == OK


#: The emulator's mix: selection, a certificate read, counter queries, right and wrong
#: VERIFYs (each a durable write) and a signature -- with the answer each must get.
EMULATOR_MIX: list[tuple[bytes, Callable[[bytes], bool]]] = [
    (bytes.fromhex("00A4040C0AD392F000260100000001"), _sw("9000")),
    (bytes.fromhex("00A4020C02000A"), _sw("9000")),
    (bytes.fromhex("00B0000000"), _data(256)),
    (bytes.fromhex("00200098"), _sw("63C3")),
    (bytes.fromhex("002000980439393939"), _sw("63C2")),
    (bytes.fromhex("002000980431323334"), _sw("9000")),
    (bytes.fromhex("00A4020C020017"), _sw("9000")),
    (bytes.fromhex("802A008020") + bytes(range(32)) + b"\x00", _data(256)),
    (bytes.fromhex("00200098"), _sw("63C3")),
]
ECHO_MIX: list[tuple[bytes, Callable[[bytes], bool]]] = [
    (bytes.fromhex("00A4040C0AD392F000260100000001"), _sw("9000")),
]


class Histogram:
    """Latencies in logarithmic buckets (1 % wide): constant memory for any run length."""

    _BASE = math.log(1.01)

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        key = int(math.log(max(seconds, 1e-7)) / self._BASE)
        self.buckets[key] = self.buckets.get(key, 0) + 1
        self.count += 1
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> None:
        for k, v in other.buckets.items():
            self.buckets[k] = self.buckets.get(k, 0) + v
        self.count += other.count
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return math.exp((key + 0.5) * self._BASE)
        return self.max


@dataclass
class SlotStats:
    slot: int
    card: str  # "emulator" | "echo"
    apdus: int = 0
    errors: int = 0
    latency: Histogram = field(default_factory=Histogram)
    first_error: str = ""


@dataclass
class SoakResult:
    seconds: float = 0.0
    slots: list[SlotStats] = field(default_factory=list)
    rss_start_kib: int = 0
    rss_end_kib: int = 0

    @property
    def apdus(self) -> int:
        return sum(s.apdus for s in self.slots)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.slots)

    @property
    def rss_growth(self) -> float:
        return (
            (self.rss_end_kib - self.rss_start_kib) / self.rss_start_kib
            if self.rss_start_kib
            else 0.0
        )

    @property
    def ok(self) -> bool:
        return self.apdus > 0 and self.errors == 0 and self.rss_growth < RSS_GROWTH_LIMIT

    def report(self) -> str:
        lines = [f"soak: {self.seconds:.1f} s, {self.apdus} APDUs, {self.errors} errors"]
        for s in self.slots:
            h = s.latency
            rate = s.apdus / self.seconds if self.seconds else 0.0
            lines.append(
                f"  slot {s.slot} ({s.card}): {s.apdus} APDUs, {rate:.0f}/s, {s.errors} errors,"
                f" latency p50 {h.quantile(0.5) * 1e6:.0f} µs, p99 {h.quantile(0.99) * 1e6:.0f}"
                f" µs, max {h.max * 1e6:.0f} µs"
                + (f"; first error: {s.first_error}" if s.errors else "")
            )
        lines.append(
            f"  emulator RSS: {self.rss_start_kib} KiB after warm-up -> {self.rss_end_kib} KiB"
            f" at the end ({self.rss_growth * 100:+.1f} %, limit {RSS_GROWTH_LIMIT * 100:.0f} %)"
        )
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)


def _drive(
    reader: str,
    atr: bytes,
    mix: list[tuple[bytes, Callable[[bytes], bool]]],
    stats: SlotStats,
    stop: threading.Event,
) -> None:
    try:
        transport = PcscTransport(reader, wait=10)
    except TransportError as exc:
        stats.errors += 1
        stats.first_error = f"cannot connect: {exc}"
        return
    if transport.atr != atr:  # someone else's card: send it nothing
        stats.errors += 1
        stats.first_error = f"{reader!r} holds a card with another ATR"
        transport.close()
        return
    clock = time.perf_counter
    add = stats.latency.add
    try:
        for apdu, check in itertools.cycle(mix):
            if stop.is_set():
                break
            t0 = clock()
            try:
                answer = transport.transmit(apdu)
            except TransportError as exc:
                stats.errors += 1
                stats.first_error = stats.first_error or f"{apdu[:4].hex()}: {exc}"
                break
            add(clock() - t0)
            stats.apdus += 1
            if not check(answer):
                stats.errors += 1
                stats.first_error = stats.first_error or (
                    f"{apdu[:4].hex()} answered {answer[-2:].hex()}"
                )
    finally:
        transport.close()


def run_soak(
    seconds: float,
    slots: Sequence[int],
    *,
    warmup: float | None = None,
    workdir: Path | None = None,
    progress: Callable[[float, SoakResult], None] | None = None,
) -> SoakResult:
    """Drive ``slots`` (emulator in the first, echo card in the second) for ``seconds``.

    Raises :class:`SlotBusyError` if a slot already holds a card or ours never shows up.
    """
    readers = [reader_for_slot(s) for s in slots]
    for reader in readers:
        if not wait_presence(reader, present=False, timeout=2.0):
            raise SlotBusyError(f"{reader!r} already holds a card; not ours to use")
    with tempfile.TemporaryDirectory(prefix="myna-soak-") as tmp:
        work = workdir or Path(tmp)
        state = new_state()
        Card.create(work / "card.db", state).close()
        procs = [EmulatorProcess(slots[0], "--state", str(work / "card.db"), log=work / "emu.log")]
        procs += [EmulatorProcess(s, "--echo", log=work / f"echo-{s}.log") for s in slots[1:2]]
        atrs = [ATRS[state.atr_form], ECHO_ATR]
        result = SoakResult(
            slots=[SlotStats(s, "emulator" if i == 0 else "echo") for i, s in enumerate(slots[:2])]
        )
        stop = threading.Event()
        threads: list[threading.Thread] = []
        try:
            for proc in procs:
                proc.start()
            for reader in readers[: len(procs)]:
                if not wait_presence(reader, present=True, timeout=15):
                    raise SlotBusyError(f"{reader!r} did not show our card within 15 s")
            mixes = [EMULATOR_MIX, ECHO_MIX]
            threads = [
                threading.Thread(
                    target=_drive, args=(r, atrs[i], mixes[i], result.slots[i], stop), daemon=True
                )
                for i, r in enumerate(readers[: len(procs)])
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            warm = warmup if warmup is not None else min(30.0, max(1.0, seconds * 0.1))
            sampled = False
            while (elapsed := time.monotonic() - started) < seconds:
                if not sampled and elapsed >= warm:
                    result.rss_start_kib = rss_kib(procs[0].pid)
                    sampled = True
                if not all(t.is_alive() for t in threads):
                    break  # a slot failed: stop early, the report says why
                if progress is not None:
                    result.seconds = elapsed
                    progress(elapsed, result)
                time.sleep(min(0.5, max(0.01, seconds - elapsed)))
            if procs[0].alive():
                result.rss_end_kib = rss_kib(procs[0].pid)
                if not sampled:
                    result.rss_start_kib = result.rss_end_kib
            result.seconds = time.monotonic() - started
        finally:
            stop.set()
            for t in threads:
                t.join(15)
            for proc in procs:
                proc.stop()
            for reader in readers[: len(procs)]:
                wait_presence(reader, present=False, timeout=5)
    return result
