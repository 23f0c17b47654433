"""Aggregate APDU/s of ``myna-emu serve`` with 1, 2, 4 and 8 slots through pcscd + vpcd.

Each point: one ``serve`` with N slots (a process per slot, the default), N client processes
(``tests.bench.pcsc_load``, one per reader) sending the read-only mix for the same window, and
the CPU the three parties used in that window, from ``/proc/<pid>/stat``: pcscd, the clients,
the cards (the serve process and its slot processes), each as a share of the machine (1.0 =
every core busy for the whole window), and the cards' CPU time per APDU. The baseline is
the sized echo card in the same layout (``serve --echo-sized`` with the same slots, so as
many processes; it answers the same bytes as the card, tests/bench/test_bench_vpcd.py says
why), measured twice around the card's two runs (ABBA); the card's ``ratio_to_echo`` target
is >= 0.9. ``one_process_ratio_to_echo``: the same cards served from threads of one process
(``serve --one-process``), what the GIL costs.

The benchmark holds the locks of slots 0-7 (tests/support/slots.py) while it runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
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
#: Every point is measured in WINDOWS windows of WINDOW seconds with the same processes; its
#: rate is the median window's (another job's burst on a shared machine spoils one window).
WINDOW = 1.0
WINDOWS = 3
#: Time for serve to open its cards and pcscd to see them, and for the clients to connect.
STARTUP = 120.0
_TICK = os.sysconf("SC_CLK_TCK")
_CPUS = os.cpu_count() or 1


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
class Point:
    apdu_per_s: float
    #: Share of the machine's CPU time in the window per party (cpu_pcscd, cpu_clients,
    #: cpu_cards), and the cards' CPU time per APDU in µs (card_cpu_us_per_apdu).
    cpu: dict[str, float]
    serve_processes: int


def _measure(card: list[str], slots: int, mix: str = "read") -> Point:
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator.cli_serve",
            *card,
            *(arg for n in range(slots) for arg in ("--slot", str(n))),
        ],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    clients: list[subprocess.Popen[str]] = []
    try:
        clients = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.bench.pcsc_load", reader_name(n), mix],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(slots)
        ]
        for client in clients:
            assert client.stdout is not None
            ready, _, atr = client.stdout.readline().strip().partition(" ")
            assert ready == "ready", f"a client did not connect (exit {client.poll()})"
            # Not another card left in the slot by someone who ignored its lock:
            assert (atr == ECHO_ATR.hex().upper()) == card[0].startswith("--echo"), f"ATR {atr}"
        cards = [serve.pid, *_children(serve.pid)]
        parties = {
            "cpu_pcscd": _pcscd_pids(),
            "cpu_clients": [c.pid for c in clients],
            "cpu_cards": cards,
        }
        windows: list[tuple[float, dict[str, float]]] = []
        for _ in range(WINDOWS):
            windows.append(_window(clients, parties))
        rate, used = sorted(windows, key=lambda w: w[0])[WINDOWS // 2]
        assert rate > 0
        cpu = {k: round(v / (WINDOW * _CPUS), 3) for k, v in used.items()}
        cpu["card_cpu_us_per_apdu"] = round(used["cpu_cards"] / (rate * WINDOW) * 1e6, 1)
        return Point(rate, cpu, len(cards))
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
        serve.terminate()
        serve.wait(timeout=30)
        # pcscd polls vpcd on its own schedule: until it has seen these cards go, the next
        # layout's clients could connect to a card that is already gone ("Transaction failed").
        for n in range(slots):
            assert wait_for_card(reader_name(n), 10, present=False), f"slot {n} kept a card"


def _window(
    clients: list[subprocess.Popen[str]], parties: dict[str, list[int]]
) -> tuple[float, dict[str, float]]:
    """One window: the clients' aggregate APDU/s and each party's CPU seconds in it."""
    start = time.monotonic() + 0.1
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(f"{start} {WINDOW}\n")
        client.stdin.flush()
    time.sleep(max(0.0, start - time.monotonic()))
    before = {k: sum(map(_cpu_seconds, pids)) for k, pids in parties.items()}
    time.sleep(max(0.0, start + WINDOW - time.monotonic()))
    after = {k: sum(map(_cpu_seconds, pids)) for k, pids in parties.items()}
    rate = 0.0
    for client in clients:
        assert client.stdout is not None
        count, elapsed = client.stdout.readline().split()
        rate += int(count) / float(elapsed)
    return rate, {k: after[k] - before[k] for k in parties}


#: Each layout's command-line options.
LAYOUTS = {
    "echo": ["--echo-sized"],
    "card": ["--memory"],
    "card-one-process": ["--memory", "--one-process"],
}
#: The order of the measurements of one point: echo and card in ABBA order, so that a drift
#: of the shared machine's load weighs on both alike; then the one-process layout.
ORDER = ("echo", "card", "card", "echo", "card-one-process")


@pytest.mark.parametrize("slots", SLOT_COUNTS)
def test_bench_scale(benchmark: Any, eight_slots: None, slots: int) -> None:
    """The card's aggregate APDU/s with *slots* slots, its CPU use, and its ratio to echo."""
    found: dict[str, list[Point]] = {layout: [] for layout in LAYOUTS}

    def measure() -> None:
        for layout in ORDER:
            if layout == "card-one-process" and slots == 1:
                continue  # one slot is always one process
            found[layout].append(_measure(LAYOUTS[layout], slots))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    echo = statistics.mean(p.apdu_per_s for p in found["echo"])
    card = statistics.mean(p.apdu_per_s for p in found["card"])
    info = benchmark.extra_info
    info["slots"] = slots
    info["apdu_per_s"] = round(card)
    info["echo_apdu_per_s"] = round(echo)
    info["ratio_to_echo"] = round(card / echo, 3)
    if found["card-one-process"]:
        (threads,) = found["card-one-process"]
        info["one_process_ratio_to_echo"] = round(threads.apdu_per_s / echo, 3)
        assert threads.serve_processes == 1
    info["serve_processes"] = found["card"][0].serve_processes
    for key in found["card"][0].cpu:
        info[key] = round(statistics.mean(p.cpu[key] for p in found["card"]), 3)
    info["echo_cpu_us_per_apdu"] = round(
        statistics.mean(p.cpu["card_cpu_us_per_apdu"] for p in found["echo"]), 1
    )
    assert {p.serve_processes for p in found["card"] + found["echo"]} == {
        1 if slots == 1 else slots + 1
    }
