"""Benchmark: the pytest plugin's cost per test (a fresh card, recording on).

1,000 tests that each take ``myna_transport`` (a freshly issued in-process card behind a
recording transport) and send one APDU, against 1,000 empty tests, both run by a new pytest
process in the same benchmark run (start-up, collection and reporting included in both: what
a vendor's suite pays). Target (issue 13): the plugin suite under 2x the empty one
(``extra_info['ratio_to_empty_tests']``). Reported by ``tox -e bench``; never asserted.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

TESTS = 1000
EMPTY = "def test_{n}():\n    pass\n"
PLUGIN = (
    "def test_{n}(myna_transport):\n"
    "    assert myna_transport.transmit(SELECT_JPKI) == b'\\x90\\x00'\n"
)
HEADER = {"empty": "", "plugin": "SELECT_JPKI = bytes.fromhex('00A4040C0AD392F000260100000001')\n"}


def _suite(root: Path, kind: str) -> Path:
    directory = root / kind
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\n")  # nothing from this repository
    template = EMPTY if kind == "empty" else PLUGIN
    body = "\n\n".join(template.format(n=n) for n in range(TESTS))
    (directory / f"test_{kind}.py").write_text(HEADER[kind] + "\n\n" + body)
    return directory


def _run(directory: Path) -> float:
    """Seconds for one ``pytest`` run of *directory* in a new process (all must pass)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MYNA_READER", "PYTEST_ADDOPTS")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0 and f"{TESTS} passed" in done.stdout, done.stdout[-2000:]
    return seconds


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plugin-bench")
    return {kind: _suite(root, kind) for kind in ("empty", "plugin")}


@pytest.fixture(scope="module")
def empty_suite_seconds(suites: dict[str, Path]) -> float:
    """The floor: the same number of empty tests, same interpreter, same plugins loaded."""
    _run(suites["empty"])  # warm the file-system cache and the .pyc files
    return statistics.median(_run(suites["empty"]) for _ in range(3))


@pytest.mark.benchmark(group="plugin")
def test_bench_plugin_tests_against_empty_tests(
    benchmark: Any, suites: dict[str, Path], empty_suite_seconds: float
) -> None:
    benchmark.pedantic(_run, args=(suites["plugin"],), rounds=3, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["tests"] = TESTS
    benchmark.extra_info["empty_suite_s"] = round(empty_suite_seconds, 3)
    benchmark.extra_info["plugin_suite_s"] = round(median, 3)
    benchmark.extra_info["overhead_per_test_ms"] = round(
        (median - empty_suite_seconds) / TESTS * 1000, 3
    )
    benchmark.extra_info["ratio_to_empty_tests"] = round(median / empty_suite_seconds, 3)
