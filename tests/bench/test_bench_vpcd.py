"""APDU throughput through pyscard -> pcscd -> vpcd: the echo card (the ceiling of the path)
and the real emulator on a read-only mix, in the same run, each in its own process.

Run with ``pytest tests/bench --benchmark-only``. extra_info carries APDU/s, p50 and p99
latency (µs) and, for the emulator, its ratio to the echo card (goal: >= 0.8).
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from harness.hil.pcsc import PcscTransport
from tests.support.pcscd import READER_SLOT0, READER_SLOT1, REPO, ensure_pcscd

pytestmark = pytest.mark.vpcd

ROUNDS = 5000
_results: dict[str, float] = {}

#: Read-only mix: SELECT JPKI, SELECT the auth certificate, READ BINARY 256, empty VERIFY.
READ_MIX = [
    bytes.fromhex("00A4040C0AD392F000260100000001"),
    bytes.fromhex("00A4020C02000A"),
    bytes.fromhex("00B0000000"),
    bytes.fromhex("00200098"),
]


def _serve(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    ensure_pcscd()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli_serve", *args], cwd=REPO, stderr=subprocess.DEVNULL
    )
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def echo_slot1() -> Iterator[subprocess.Popen[bytes]]:
    yield from _serve("--echo", "--slot", "1")


@pytest.fixture(scope="module")
def card_slot0() -> Iterator[subprocess.Popen[bytes]]:
    pytest.importorskip("emulator.card")
    yield from _serve("--memory", "--slot", "0")


def _report(benchmark: Any, name: str) -> float:
    data = sorted(benchmark.stats.stats.data)
    rate = len(data) / sum(data)
    benchmark.extra_info["apdu_per_s"] = round(rate)
    benchmark.extra_info["p50_us"] = round(statistics.median(data) * 1e6, 1)
    benchmark.extra_info["p99_us"] = round(data[int(len(data) * 0.99) - 1] * 1e6, 1)
    _results[name] = rate
    return rate


def test_bench_echo_card(benchmark: Any, echo_slot1: object) -> None:
    # The same command mix as the emulator gets: only the card's work and its answers differ.
    with PcscTransport(READER_SLOT1, wait=10) as transport:
        mix = itertools.cycle(READ_MIX)
        assert all(transport.transmit(apdu) == b"\x90\x00" for apdu in READ_MIX)

        def one() -> bytes:
            return transport.transmit(next(mix))

        benchmark.pedantic(one, rounds=ROUNDS, warmup_rounds=100)
    _report(benchmark, "echo")


def test_bench_emulator_read_mix(benchmark: Any, card_slot0: object) -> None:
    with PcscTransport(READER_SLOT0, wait=10) as transport:
        mix = itertools.cycle(READ_MIX)
        for apdu in READ_MIX:
            assert transport.transmit(apdu)[-2:] in (b"\x90\x00", b"\x63\xc3"), apdu.hex()

        def one() -> bytes:
            return transport.transmit(next(mix))

        benchmark.pedantic(one, rounds=ROUNDS, warmup_rounds=100)
    rate = _report(benchmark, "card")
    if "echo" in _results:
        benchmark.extra_info["ratio_to_echo"] = round(rate / _results["echo"], 3)
