"""APDU throughput through pyscard -> pcscd -> vpcd: the echo card (the ceiling of the path)
and the real emulator, on a read-only mix and on status queries alone, each card served by a
process of its own (slot 0: the emulator, slot 1: the sized echo card, slot 2: the plain echo
card; the benchmark holds the three slots' locks).

The baseline is the *sized* echo card (``serve --echo-sized``): it does no work either, but
answers as many bytes as the command's Le asks for, as the emulator does, so the two differ
only in the card's work. The plain echo card answers a READ BINARY of 256 bytes with a bare
90 00, which spares pcscd and vpcd the data; the emulator's ratio to it on the read mix is
reported too (``ratio_to_plain_echo``). On status queries the two echo cards are the same.

Run with ``pytest tests/bench --benchmark-only``. extra_info carries APDU/s, p50 and p99
latency (µs) and, for the emulator, ``ratio_to_echo`` (goal: >= 0.95): the echo card's time
over the emulator's for the same APDUs, timed in alternating blocks of a few hundred APDUs
on two open connections, each pair of blocks in either order, the median over the pairs
(the shared machine's speed drifts by half within seconds; a block pair sees the same
speed). ``echo_aa_ratio``, the same measure between the two echo cards on status queries
(which they answer alike), shows the noise of the run. Alternating the two cards
APDU by APDU was tried: it penalises whichever card answers second, a pcscd effect, and is
not used.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from emulator.vpcd import reader_name
from harness.hil.pcsc import PcscTransport
from tests.bench.pcsc_load import MIXES, SELECT_JPKI
from tests.support.pcscd import READER_SLOT0, READER_SLOT1, REPO, ensure_pcscd
from tests.support.slots import slot_lock

pytestmark = pytest.mark.vpcd

ROUNDS = 5000


@pytest.fixture(scope="module")
def served() -> Iterator[None]:
    """The emulator in slot 0, the sized echo card in slot 1 and the plain one in slot 2, each
    ``serve`` its own process."""
    ensure_pcscd()
    with ExitStack() as stack:
        for slot in (0, 1, 2):
            stack.enter_context(slot_lock(slot))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "emulator.cli_serve", *args],
                cwd=REPO,
                stderr=subprocess.DEVNULL,
            )
            for args in (
                ["--memory", "--slot", "0"],
                ["--echo-sized", "--slot", "1"],
                ["--echo", "--slot", "2"],
            )
        ]
        try:
            yield
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)


def _stats(benchmark: Any, data: list[float]) -> float:
    data = sorted(data)
    rate = len(data) / sum(data)
    benchmark.extra_info["apdu_per_s"] = round(rate)
    benchmark.extra_info["p50_us"] = round(statistics.median(data) * 1e6, 1)
    benchmark.extra_info["p99_us"] = round(data[int(len(data) * 0.99) - 1] * 1e6, 1)
    return rate


#: Block pairs and APDUs per block of :func:`_interleaved`.
PAIRS = 40
BLOCK = 250


def _run(benchmark: Any, mix_name: str, *, card: bool) -> None:
    mix = MIXES[mix_name]
    with PcscTransport(READER_SLOT0 if card else READER_SLOT1, wait=30) as transport:
        if card:
            assert transport.transmit(SELECT_JPKI) == b"\x90\x00"
        for apdu in mix:
            assert transport.transmit(apdu)[-2:] in (b"\x90\x00", b"\x63\xc3"), apdu.hex()
        apdus = itertools.cycle(mix)
        transmit = transport.transmit
        benchmark.pedantic(lambda: transmit(next(apdus)), rounds=ROUNDS, warmup_rounds=100)
    _stats(benchmark, benchmark.stats.stats.data)
    if card:
        echo, ratio = _interleaved(mix, READER_SLOT1, READER_SLOT0)
        benchmark.extra_info["echo_apdu_per_s"] = round(echo)
        benchmark.extra_info["ratio_to_echo"] = round(ratio, 3)
        if mix_name == "read":
            plain, ratio = _interleaved(mix, reader_name(2), READER_SLOT0)
            benchmark.extra_info["plain_echo_apdu_per_s"] = round(plain)
            benchmark.extra_info["ratio_to_plain_echo"] = round(ratio, 3)
        else:
            # A/A: the two echo cards answer status queries alike, so their ratio shows how
            # far this run's noise alone moves a ratio.
            benchmark.extra_info["echo_aa_ratio"] = round(
                _interleaved(mix, reader_name(2), READER_SLOT1)[1], 3
            )


def _interleaved(mix: list[bytes], baseline: str, subject: str) -> tuple[float, float]:
    """The *baseline* card's APDU/s on *mix*, and the *subject*'s speed relative to it (the
    median over block pairs of baseline time / subject time), timed in alternating blocks
    (see the module's docstring)."""
    with (
        PcscTransport(baseline, wait=30) as base,
        PcscTransport(subject, wait=30) as other,
    ):
        for transport in (base, other):
            if transport.transmit(SELECT_JPKI) != b"\x90\x00":
                raise AssertionError(f"{transport.name}: SELECT refused")
        block = list(itertools.islice(itertools.cycle(mix), BLOCK))
        for transport in (base, other):
            for apdu in block:
                transport.transmit(apdu)
        base_total, ratios = 0.0, []
        for pair in range(PAIRS):
            times = {}
            for transport in (base, other) if pair % 2 == 0 else (other, base):
                transmit = transport.transmit
                start = time.perf_counter()
                for apdu in block:
                    transmit(apdu)
                times[transport] = time.perf_counter() - start
            base_total += times[base]
            ratios.append(times[base] / times[other])
    return PAIRS * BLOCK / base_total, statistics.median(ratios)


def test_bench_echo_card(benchmark: Any, served: None) -> None:
    # The same command mix as the emulator gets: only the card's work and its answers differ.
    _run(benchmark, "read", card=False)


def test_bench_emulator_read_mix(benchmark: Any, served: None) -> None:
    _run(benchmark, "read", card=True)


def test_bench_echo_status(benchmark: Any, served: None) -> None:
    _run(benchmark, "status", card=False)


def test_bench_emulator_status(benchmark: Any, served: None) -> None:
    _run(benchmark, "status", card=True)
