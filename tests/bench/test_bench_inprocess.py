"""In-process benchmarks (issue 2 "Speed", issue 6 item 4). Run with

    .venv/bin/python -m pytest tests/bench/test_bench_inprocess.py -p no:cacheprovider \
        --benchmark-only

* Non-mutating APDUs (status query, SELECT, 256-byte READ BINARY) through the in-process
  transport, each reported beside a bare bytes-in/bytes-out echo card measured in the same
  run (``extra_info['ratio_to_echo']``); target <= 20 µs median per APDU.
* Durable mode (FileStore in tmp_path): a wrong VERIFY, a correct VERIFY, one fsync'ed
  small-file write (``ratio_to_fsync_write``) and one *atomic* small-file write -- temp file,
  fsync, rename, fsync of the directory, the least a crash-safe replace costs -- of the
  state file's size (``ratio_to_atomic_write``), all measured in the same run; expected about
  1x and 2x the atomic write.

Benchmarks report; they never assert a time.
"""

from __future__ import annotations

import os
import statistics
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.card import Card
from emulator.echo import EchoCard
from harness.inprocess import InProcessTransport
from tests.support.cards import fresh_card, fresh_state

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_CERT = bytes.fromhex("00A4020C02000A")
STATUS_QUERY = bytes.fromhex("00200098")
READ_256 = bytes.fromhex("00B0000000")
VERIFY_RIGHT = bytes.fromhex("002000980431323334")
VERIFY_WRONG = bytes.fromhex("002000980439393939")


def _median_seconds(fn: Callable[[], object], number: int, repeat: int = 7) -> float:
    return statistics.median(t / number for t in timeit.repeat(fn, number=number, repeat=repeat))


@pytest.fixture(scope="module")
def echo_median() -> float:
    """The floor: the same transport carrying APDUs to a card that answers 9000 at once."""
    transport = InProcessTransport(EchoCard())  # type: ignore[arg-type]
    return _median_seconds(lambda: transport.transmit(STATUS_QUERY), 20000)


@pytest.fixture
def transport() -> InProcessTransport:
    t = InProcessTransport(fresh_card())
    assert t.transmit(SELECT_JPKI) == b"\x90\x00"
    assert t.transmit(SELECT_AUTH_CERT) == b"\x90\x00"
    return t


def _report(benchmark: Any, baseline: float, key: str) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_us"] = round(median * 1e6, 2)
    benchmark.extra_info[key.replace("ratio_to_", "") + "_median_us"] = round(baseline * 1e6, 2)
    benchmark.extra_info[key] = round(median / baseline, 3)


@pytest.mark.benchmark(group="inprocess")
def test_bench_echo_baseline(benchmark: Any, echo_median: float) -> None:
    transport = InProcessTransport(EchoCard())  # type: ignore[arg-type]
    assert benchmark(transport.transmit, STATUS_QUERY) == b"\x90\x00"
    _report(benchmark, echo_median, "ratio_to_echo")


#: The non-mutating APDUs of the issue's target, and what each must answer.
NON_MUTATING = {
    "status_query": (STATUS_QUERY, lambda r: r == b"\x63\xc3"),
    "select_application": (SELECT_JPKI, lambda r: r == b"\x90\x00"),
    "select_ef": (SELECT_AUTH_CERT, lambda r: r == b"\x90\x00"),
    "read_binary_256": (READ_256, lambda r: len(r) == 258 and r[-2:] == b"\x90\x00"),
}


@pytest.mark.benchmark(group="inprocess")
@pytest.mark.parametrize("name", list(NON_MUTATING))
def test_bench_non_mutating(
    benchmark: Any, transport: InProcessTransport, echo_median: float, name: str
) -> None:
    apdu, answers_right = NON_MUTATING[name]
    assert answers_right(benchmark(transport.transmit, apdu))
    _report(benchmark, echo_median, "ratio_to_echo")


# --- durable mode ---------------------------------------------------------------------------


def _fsync_write(path: Path, payload: bytes) -> None:
    """One fsync'ed small-file write: open, write, fsync, close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def fsync_write_median(tmp_path_factory: pytest.TempPathFactory) -> float:
    """One fsync'ed write of 64 bytes."""
    path = tmp_path_factory.mktemp("fsync") / "small.bin"
    payload = os.urandom(64)
    return _median_seconds(lambda: _fsync_write(path, payload), 50, repeat=5)


def _atomic_write(path: Path, payload: bytes) -> None:
    """The minimal crash-safe replace of a small file, without any card logic."""
    tmp = path.with_name(path.name + ".tmp")
    _fsync_write(tmp, payload)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@pytest.fixture(scope="module")
def state_size(tmp_path_factory: pytest.TempPathFactory) -> int:
    """Bytes of a card state file (keys, certificates, holder, counters)."""
    path = tmp_path_factory.mktemp("size") / "card.json"
    Card.create(path, fresh_state())
    return path.stat().st_size


@pytest.fixture(scope="module")
def atomic_write_median(tmp_path_factory: pytest.TempPathFactory, state_size: int) -> float:
    """One atomic write of a file as large as a card state file."""
    path = tmp_path_factory.mktemp("atomic") / "small.bin"
    payload = os.urandom(state_size)
    return _median_seconds(lambda: _atomic_write(path, payload), 50, repeat=5)


@pytest.fixture
def durable(tmp_path: Path) -> Card:
    card = Card.create(tmp_path / "card.json", fresh_state())
    card.power_on()
    assert card.transmit(SELECT_JPKI) == b"\x90\x00"
    return card


@pytest.mark.benchmark(group="durable")
def test_bench_fsync_write_baseline(
    benchmark: Any, tmp_path: Path, fsync_write_median: float
) -> None:
    payload = os.urandom(64)
    benchmark.pedantic(_fsync_write, args=(tmp_path / "small.bin", payload), rounds=100,
                       warmup_rounds=3)
    _report(benchmark, fsync_write_median, "ratio_to_fsync_write")


@pytest.mark.benchmark(group="durable")
def test_bench_atomic_write_baseline(
    benchmark: Any,
    tmp_path: Path,
    state_size: int,
    atomic_write_median: float,
    fsync_write_median: float,
) -> None:
    payload = os.urandom(state_size)
    benchmark.pedantic(_atomic_write, args=(tmp_path / "s.bin", payload), rounds=100)
    _report(benchmark, fsync_write_median, "ratio_to_fsync_write")
    _report(benchmark, atomic_write_median, "ratio_to_atomic_write")


@pytest.mark.benchmark(group="durable")
@pytest.mark.parametrize(
    "apdu, answer, writes", [(VERIFY_WRONG, b"\x63\xc2", 1), (VERIFY_RIGHT, b"\x90\x00", 2)],
    ids=["wrong_verify", "correct_verify"],
)
def test_bench_durable_verify(
    benchmark: Any,
    durable: Card,
    fsync_write_median: float,
    atomic_write_median: float,
    apdu: bytes,
    answer: bytes,
    writes: int,
) -> None:
    """A wrong VERIFY writes once (the decrement), a correct one twice (decrement, restore)."""
    record = durable.state.pins["auth"]

    def refill() -> None:  # in memory only: the benchmarked VERIFY does the durable writes
        record.tries_left = record.max_tries

    before = durable.store.writes
    result = benchmark.pedantic(
        durable.transmit, args=(apdu,), setup=refill, rounds=100, warmup_rounds=3
    )
    assert result == answer
    per_apdu = (durable.store.writes - before) / 103
    assert per_apdu == writes
    benchmark.extra_info["durable_writes_per_apdu"] = per_apdu
    _report(benchmark, fsync_write_median, "ratio_to_fsync_write")
    _report(benchmark, atomic_write_median, "ratio_to_atomic_write")


@pytest.mark.benchmark(group="durable")
def test_bench_durable_status_query(
    benchmark: Any, durable: Card, fsync_write_median: float, atomic_write_median: float
) -> None:
    writes = durable.store.writes
    assert benchmark(durable.transmit, STATUS_QUERY) == b"\x63\xc3"
    assert durable.store.writes == writes, "a status query writes nothing"
    _report(benchmark, fsync_write_median, "ratio_to_fsync_write")
