"""Benchmark: the whole scenario catalogue against the in-process emulator, memory mode.

Target (issue 4): under 2 s on the development machine. Reported by ``tox -e bench``; never
asserted. Skipped by default (``--benchmark-skip`` in the pytest options).
"""

from __future__ import annotations

from typing import Any

from harness.cards import shared_pki
from harness.scenarios.runner import all_units, run_units


def test_bench_catalogue_in_process(benchmark: Any) -> None:
    shared_pki()  # one TEST PKI per run, as `myna-hil run --all` does
    units = all_units()
    results = benchmark.pedantic(run_units, args=(units,), rounds=5, warmup_rounds=1)
    assert all(r.ok for r in results)
    benchmark.extra_info["units"] = len(units)
    benchmark.extra_info["apdus"] = sum(r.apdus for r in results)


def test_bench_one_phantom_scenario(benchmark: Any) -> None:
    shared_pki()
    units = [u for u in all_units() if u.name == "phantom-app-retry"]
    results = benchmark(run_units, units)
    assert results[0].ok
