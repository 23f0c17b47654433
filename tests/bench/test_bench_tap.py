"""What ``myna-hil tap`` adds to an app's APDUs: the same read-only mix to the card directly
(slot 4, ``myna-emu serve``) and through the tap (slot 5: app -> pcscd -> vpcd -> the tap ->
pcscd -> vpcd -> the card), in the same run. The tap records its trace, as it always does.

extra_info: p50 / p99 latency (µs) of each path, and for the tap its ratio to the direct
path and the microseconds it adds at p50 and p99.
"""

from __future__ import annotations

import itertools
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.hil.pcsc import PcscTransport
from tests.bench.pcsc_load import READ_MIX
from tests.support.pcscd import ensure_pcscd
from tests.support.tap import (
    BIN,
    CARD_READER,
    CARD_SLOT,
    TAP_READER,
    TAP_SLOT,
    both_slots,
    card_present,
    wait_until,
)

pytestmark = pytest.mark.vpcd

ROUNDS = 3000
_direct: dict[str, float] = {}


def _percentiles(benchmark: Any) -> tuple[float, float]:
    data = sorted(benchmark.stats.stats.data)
    p50 = statistics.median(data) * 1e6
    p99 = data[int(len(data) * 0.99) - 1] * 1e6
    benchmark.extra_info["p50_us"] = round(p50, 1)
    benchmark.extra_info["p99_us"] = round(p99, 1)
    benchmark.extra_info["apdu_per_s"] = round(len(data) / sum(data))
    return p50, p99


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def card() -> Iterator[None]:
    """The emulator in slot 4 (both slots locked for the module)."""
    ensure_pcscd()
    with both_slots():
        wait_until(lambda: not card_present(CARD_READER), f"{CARD_READER!r} to be free")
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli_serve", "--memory", "--slot", str(CARD_SLOT)],
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: card_present(CARD_READER), f"the card in {CARD_READER!r}")
            yield
        finally:
            _stop(proc)


@pytest.fixture
def tap(card: None, tmp_path: Path) -> Iterator[None]:
    wait_until(lambda: not card_present(TAP_READER), f"{TAP_READER!r} to be free")
    proc = subprocess.Popen(
        [
            str(BIN / "myna-hil"),
            "tap",
            "--reader",
            CARD_READER,
            "--slot",
            str(TAP_SLOT),
            "--trace",
            str(tmp_path / "bench.jsonl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: card_present(TAP_READER), f"the tap's card in {TAP_READER!r}")
        yield
    finally:
        _stop(proc)
        wait_until(lambda: not card_present(TAP_READER), f"{TAP_READER!r} to empty")


def _run(benchmark: Any, reader: str) -> None:
    with PcscTransport(reader, wait=10) as transport:
        answers = [transport.transmit(apdu)[-2:] for apdu in READ_MIX]
        assert answers == [b"\x90\x00", b"\x90\x00", b"\x90\x00", b"\x63\xc3"], answers
        mix = itertools.cycle(READ_MIX)

        def one() -> bytes:
            return transport.transmit(next(mix))

        benchmark.pedantic(one, rounds=ROUNDS, warmup_rounds=100)


def test_bench_direct_read_mix(benchmark: Any, card: None) -> None:
    _run(benchmark, CARD_READER)
    _direct["p50"], _direct["p99"] = _percentiles(benchmark)


def test_bench_tap_read_mix(benchmark: Any, tap: None) -> None:
    _run(benchmark, TAP_READER)
    p50, p99 = _percentiles(benchmark)
    if _direct:
        benchmark.extra_info["ratio_to_direct"] = round(p50 / _direct["p50"], 2)
        benchmark.extra_info["added_p50_us"] = round(p50 - _direct["p50"], 1)
        benchmark.extra_info["added_p99_us"] = round(p99 - _direct["p99"], 1)
