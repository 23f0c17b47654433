"""Aggregate APDU/s of ``myna-emu serve`` with 1, 2, 4 and 8 slots through pcscd + vpcd.

Each point: one ``serve`` with N slots (a process per slot, the default) and N client
processes (``tests.bench.pcsc_load``, one per reader) sending the read-only mix in the same
windows; the CPU the three parties used in those windows, from ``/proc/<pid>/stat``: pcscd,
the clients, the cards (the serve process and its slot processes), each as a share of the
machine (1.0 = every core busy for the whole time), and the cards' CPU time per APDU. The
baseline is the sized echo card in the same layout (``serve --echo-sized`` with as many
slots, so as many processes; it answers the same bytes as the card,
tests/bench/test_bench_vpcd.py says why). The card's ``ratio_to_echo`` target is >= 0.9.
``one_process_ratio_to_echo``: the same cards served from threads of one process
(``serve --one-process``), what the GIL costs.

How the two are compared (``method``):

- ``alternating`` (1, 2 and 4 slots): the card's serve on one half of the eight slots, the
  echo card's on the other, both running; every client holds a connection to one card of
  each and all switch together, in windows of WINDOW seconds, PAIRS pairs of windows, each
  pair in either order. A placement's ratio is the median over its pairs: the shared
  machine's speed drifts by half within seconds, and a pair of windows sees the same speed.
  Two echo serves compared this way (an A/A control, one run) came out 0.96-1.01, the
  lower figures with 2 and 4 slots, as if one half of the slots ran faster. So each
  comparison is made in both placements (``ratio_low``: the card on slots 0..;
  ``ratio_high``: on slots 4..) and the ratio is their geometric mean, which cancels such a
  difference; ``placement_bias`` estimates it (1.0: none), noise included. Later runs gave
  0.97-1.04 with no steady sign: noise, so far.
- ``abba`` (8 slots: pcscd has 8 readers, so the two cannot run at once): the two layouts
  one after the other, echo, card, card, echo, each the median of ABBA_WINDOWS windows of
  ABBA_WINDOW seconds.

The benchmark holds the locks of slots 0-7 (tests/support/slots.py) while it runs.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emulator.echo import ECHO_ATR
from emulator.vpcd import reader_name
from harness.hil.pcsc import list_readers
from harness.pytest_plugin import wait_for_card
from tests.support.pcscd import REPO, ensure_pcscd, in_ci
from tests.support.slots import slot_lock

pytestmark = pytest.mark.vpcd

SLOT_COUNTS = (1, 2, 4, 8)
#: The first slot of the second layout when two run at once (up to SECOND slots each).
SECOND = 4
#: Alternating windows: seconds each, pairs per comparison.
WINDOW = 0.2
PAIRS = 16
#: When the layouts take turns whole (8 slots): windows per layout, seconds each; a layout's
#: rate is its median window's (another job's burst on a shared machine spoils one window).
ABBA_WINDOW = 1.0
ABBA_WINDOWS = 3
#: Time for serve to open its cards and pcscd to see them, and for the clients to connect.
STARTUP = 120.0
_TICK = os.sysconf("SC_CLK_TCK")
_CPUS = os.cpu_count() or 1

#: Each layout's command-line options.
LAYOUTS = {
    "echo": ["--echo-sized"],
    "card": ["--memory"],
    "card-one-process": ["--memory", "--one-process"],
}


@pytest.fixture(scope="module")
def eight_slots() -> Iterator[None]:
    """pcscd with the readers of slots 0-7, and their locks, for the whole module."""
    ensure_pcscd()
    from_pcscd = list_readers()
    missing = [reader_name(n) for n in range(max(SLOT_COUNTS)) if reader_name(n) not in from_pcscd]
    if missing:
        reason = f"pcscd lacks the readers {missing} (MYNA_VPCD_EXTRA=3 ci/pcscd-start.sh)"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with ExitStack() as stack:
        for slot in range(max(SLOT_COUNTS)):  # ascending, as every user of several slots
            stack.enter_context(slot_lock(slot))
        yield


def _cpu_seconds(pid: int) -> float:
    """utime + stime of *pid* (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pcscd_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "pcscd":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


@dataclass
class Tally:
    """What one layout did in its windows: APDUs, window rates, CPU seconds per party."""

    processes: int
    rates: list[float] = field(default_factory=list)
    apdus: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, rate: float, apdus: int, seconds: float, cpu: dict[str, float]) -> None:
        self.rates.append(rate)
        self._count(apdus, seconds, cpu)

    def _count(self, apdus: int, seconds: float, cpu: dict[str, float]) -> None:
        self.apdus += apdus
        self.seconds += seconds
        for party, used in cpu.items():
            self.cpu[party] = self.cpu.get(party, 0.0) + used

    @property
    def apdu_per_s(self) -> float:
        return statistics.median(self.rates)

    def merged(self, other: Tally) -> Tally:
        both = Tally(self.processes, self.rates + other.rates)
        for tally in (self, other):
            both._count(tally.apdus, tally.seconds, tally.cpu)
        return both

    def shares(self) -> dict[str, float]:
        """Each party's share of the machine, and the cards' CPU µs per APDU."""
        found = {k: round(v / (self.seconds * _CPUS), 3) for k, v in self.cpu.items()}
        found["card_cpu_us_per_apdu"] = round(self.cpu["cpu_cards"] / self.apdus * 1e6, 1)
        return found


@contextmanager
def _serve(layout: str, slots: Sequence[int]) -> Iterator[list[int]]:
    """``myna-emu serve`` of *layout* on *slots*; yields its processes' pids once up."""
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator.cli_serve",
            *LAYOUTS[layout],
            *(arg for n in slots for arg in ("--slot", str(n))),
        ],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        for n in slots:
            assert wait_for_card(reader_name(n), STARTUP), f"{layout}: no card in slot {n}"
        yield [serve.pid, *_children(serve.pid)]
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        # pcscd polls vpcd on its own schedule: until it has seen these cards go, the next
        # layout's clients could connect to a card that is already gone ("Transaction failed").
        for n in slots:
            assert wait_for_card(reader_name(n), 10, present=False), f"slot {n} kept a card"


@contextmanager
def _clients(readers: list[list[str]], echo: list[bool]) -> Iterator[list[subprocess.Popen[str]]]:
    """One client per entry of *readers*, connected to each of its readers, which hold an
    echo card where *echo* says so (not another card left by someone who ignored a lock)."""
    clients = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.bench.pcsc_load", "read", *names],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for names in readers
    ]
    try:
        for client in clients:
            assert client.stdout is not None
            ready, *atrs = client.stdout.readline().split()
            assert ready == "ready", f"a client did not connect (exit {client.poll()})"
            assert [atr == ECHO_ATR.hex().upper() for atr in atrs] == echo, f"ATRs {atrs}"
        yield clients
    finally:
        for client in clients:
            if client.stdin is not None:
                client.stdin.close()
        for client in clients:
            try:
                client.wait(timeout=10)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()


def _window(
    clients: list[subprocess.Popen[str]], which: int, seconds: float, parties: dict[str, list[int]]
) -> tuple[float, int, dict[str, float]]:
    """One window on every client's card number *which*: the aggregate APDU/s, the APDUs,
    and each party's CPU seconds in it."""
    start = time.monotonic() + 0.05
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(f"{start} {seconds} {which}\n")
        client.stdin.flush()
    time.sleep(max(0.0, start - time.monotonic()))
    before = {k: sum(map(_cpu_seconds, pids)) for k, pids in parties.items()}
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    after = {k: sum(map(_cpu_seconds, pids)) for k, pids in parties.items()}
    rate, apdus = 0.0, 0
    for client in clients:
        assert client.stdout is not None
        count, elapsed = client.stdout.readline().split()
        rate += int(count) / float(elapsed)
        apdus += int(count)
    return rate, apdus, {k: after[k] - before[k] for k in parties}


def _parties(cards: list[int], clients: list[subprocess.Popen[str]]) -> dict[str, list[int]]:
    return {"cpu_pcscd": _pcscd_pids(), "cpu_clients": [c.pid for c in clients], "cpu_cards": cards}


def _alternating(a: str, b: str, slots: int) -> tuple[float, Tally, Tally]:
    """*a* on slots 0.., *b* on slots SECOND.., at once; the clients switch between them
    window by window. The median of the pairs' rate ratios a / b, and each one's tally."""
    with ExitStack() as stack:
        pids = [
            stack.enter_context(_serve(a, range(slots))),
            stack.enter_context(_serve(b, range(SECOND, SECOND + slots))),
        ]
        readers = [[reader_name(n), reader_name(SECOND + n)] for n in range(slots)]
        clients = stack.enter_context(_clients(readers, [a == "echo", b == "echo"]))
        tallies = (Tally(len(pids[0])), Tally(len(pids[1])))
        ratios = []
        for pair in range(PAIRS):
            rates = [0.0, 0.0]
            for which in (0, 1) if pair % 2 == 0 else (1, 0):
                rate, apdus, used = _window(clients, which, WINDOW, _parties(pids[which], clients))
                tallies[which].add(rate, apdus, WINDOW, used)
                rates[which] = rate
            ratios.append(rates[0] / rates[1])
        return statistics.median(ratios), tallies[0], tallies[1]


@dataclass
class Comparison:
    """*subject* against the echo card: the ratio, and for ``alternating`` its two
    placements' (``low``: the subject on slots 0..; ``high``: on slots SECOND..)."""

    ratio: float
    subject: Tally
    echo: Tally
    low: float | None = None
    high: float | None = None

    @property
    def bias(self) -> float:
        """How much faster slots 0.. ran than slots SECOND.. for the same card: the two
        placements' ratios are (subject / echo) * bias and (subject / echo) / bias."""
        assert self.low is not None and self.high is not None
        return math.sqrt(self.low / self.high)


def _compare(subject: str, slots: int) -> Comparison:
    low, subject_low, echo_high = _alternating(subject, "echo", slots)
    inverse, echo_low, subject_high = _alternating("echo", subject, slots)
    high = 1 / inverse
    return Comparison(
        math.sqrt(low * high),
        subject_low.merged(subject_high),
        echo_high.merged(echo_low),
        low,
        high,
    )


#: The order of the layouts taking turns whole: echo and card in ABBA order, so that a drift
#: of the shared machine's load weighs on both alike.
ORDER = ("echo", "card", "card", "echo")


def _whole(layout: str, slots: int) -> Tally:
    """*layout* on slots 0.. alone, ABBA_WINDOWS windows; the rate is the median window's."""
    with ExitStack() as stack:
        cards = stack.enter_context(_serve(layout, range(slots)))
        readers = [[reader_name(n)] for n in range(slots)]
        clients = stack.enter_context(_clients(readers, [layout == "echo"]))
        tally = Tally(len(cards))
        for _ in range(ABBA_WINDOWS):
            rate, apdus, used = _window(clients, 0, ABBA_WINDOW, _parties(cards, clients))
            tally.add(rate, apdus, ABBA_WINDOW, used)
        return tally


@pytest.mark.parametrize("slots", SLOT_COUNTS)
def test_bench_scale(benchmark: Any, eight_slots: None, slots: int) -> None:
    """The card's aggregate APDU/s with *slots* slots, its CPU use, and its ratio to echo."""
    info = benchmark.extra_info
    found: dict[str, Any] = {}

    def measure() -> None:
        if slots <= SECOND:
            found["card"] = _compare("card", slots)
            if slots > 1:  # one slot is always one process
                found["threads"] = _compare("card-one-process", slots)
        else:
            echo1, card1, card2, echo2 = (_whole(lay, slots) for lay in ORDER)
            echo = statistics.mean([echo1.apdu_per_s, echo2.apdu_per_s])
            card = statistics.mean([card1.apdu_per_s, card2.apdu_per_s])
            found["card"] = Comparison(card / echo, card1.merged(card2), echo1.merged(echo2))
            threads = _whole("card-one-process", slots)
            found["threads"] = Comparison(threads.apdu_per_s / echo, threads, echo1)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    compared: Comparison = found["card"]
    card, echo = compared.subject, compared.echo
    info["slots"] = slots
    info["method"] = "alternating" if slots <= SECOND else "abba"
    info["apdu_per_s"] = round(card.apdu_per_s)
    info["echo_apdu_per_s"] = round(echo.apdu_per_s)
    info["ratio_to_echo"] = round(compared.ratio, 3)
    if compared.low is not None and compared.high is not None:
        info["ratio_low"] = round(compared.low, 3)
        info["ratio_high"] = round(compared.high, 3)
        info["placement_bias"] = round(compared.bias, 3)
    if "threads" in found:
        info["one_process_ratio_to_echo"] = round(found["threads"].ratio, 3)
        assert found["threads"].subject.processes == 1
    info["serve_processes"] = card.processes
    info |= card.shares()
    info["echo_cpu_us_per_apdu"] = echo.shares()["card_cpu_us_per_apdu"]
    assert {card.processes, echo.processes} == {1 if slots == 1 else slots + 1}
