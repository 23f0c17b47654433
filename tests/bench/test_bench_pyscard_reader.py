"""The in-process pyscard reader (``myna_pyscard_reader``): what an app pays per APDU for
going through pyscard's ``CardConnection.transmit`` and the in-process PC/SC service instead
of the in-process transport. Run with

    .tox/py/bin/python -m pytest tests/bench/test_bench_pyscard_reader.py --benchmark-only \
        --benchmark-enable -p no:randomly

The mix is the read-only one of the vpcd benchmark (SELECT application, SELECT EF, READ
BINARY 256, empty VERIFY), four APDUs per round, on the same card both ways; the baseline
(``InProcessTransport.transmit``) is measured in the same run and the ratio is
``extra_info['ratio_to_inprocess']``. Benchmarks report; they never assert a time.
"""

from __future__ import annotations

import statistics
import timeit
from typing import Any

import pytest
from smartcard.System import readers

from harness.inprocess import InProcessTransport
from harness.pyscard_reader import pyscard_reader
from harness.pytest_plugin import make_card

MIX = [
    bytes.fromhex("00A4040C0AD392F000260100000001"),
    bytes.fromhex("00A4020C02000A"),
    bytes.fromhex("00B0000000"),
    bytes.fromhex("00200098"),
]


def _direct_round(transport: InProcessTransport) -> list[bytes]:
    return [transport.transmit(apdu) for apdu in MIX]


@pytest.fixture(scope="module")
def direct_median() -> float:
    """Four APDUs straight through the in-process transport (the floor)."""
    transport = InProcessTransport(make_card().card)
    return statistics.median(
        t / 2000 for t in timeit.repeat(lambda: _direct_round(transport), number=2000, repeat=7)
    )


@pytest.mark.benchmark(group="pyscard-reader")
def test_bench_pyscard_reader_mix(benchmark: Any, direct_median: float) -> None:
    with pyscard_reader(make_card()):
        connection = readers()[0].createConnection()
        connection.connect()

        def round_trip() -> list[int]:
            return [connection.transmit(list(apdu))[1] for apdu in MIX]

        try:
            assert benchmark(round_trip) == [0x90, 0x90, 0x90, 0x63]
        finally:
            connection.disconnect()
    median = benchmark.stats.stats.median
    benchmark.extra_info["apdu_per_s"] = round(len(MIX) / median)
    benchmark.extra_info["inprocess_median_us"] = round(direct_median * 1e6, 2)
    benchmark.extra_info["ratio_to_inprocess"] = round(median / direct_median, 3)
