"""Benchmark: the scenario catalogue, in-process and as the ``myna-hil run --all`` command.

Targets (issue 15): the catalogue in-process (memory mode, the run's TEST PKI made) in at
most 60 ms a run; ``myna-hil run --all`` in at most 0.5 s of wall time on a warm machine,
start-up and imports included. Reported by ``tox -e bench`` (``ratio_to_target``, and for
the command ``ratio_to_startup``: its wall time over ``python -c pass``'s, the interpreter's
own start-up, timed alternately in the same run); never asserted. Skipped by default
(``--benchmark-skip`` in the pytest options).

"Warm" includes compiled bytecode, as ``pip install .`` leaves it: the processes get a
bytecode cache of their own (``PYTHONPYCACHEPREFIX``, filled by the warm-up round) even when
the environment says ``PYTHONDONTWRITEBYTECODE`` (compiling every module from source on every
run would more than double the command's time).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.cards import shared_pki
from harness.scenarios.runner import all_units, run_units

#: Issue 15's targets, in seconds.
CATALOGUE_TARGET = 0.060
RUN_ALL_TARGET = 0.5

_SCRIPT = Path(sys.executable).with_name("myna-hil")
#: The command as a user types it (the installed script beside this interpreter), else the
#: same entry point through ``-m``.
RUN_ALL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "harness"]
RUN_ALL = [*RUN_ALL, "run", "--all"]
STARTUP = [sys.executable, "-c", "pass"]


def test_bench_catalogue_in_process(benchmark: Any) -> None:
    shared_pki()  # one TEST PKI per run, as `myna-hil run --all` does
    units = all_units()
    cpu: list[float] = []

    def run() -> list[Any]:
        start = time.process_time()
        results = run_units(units)
        cpu.append(time.process_time() - start)
        return results

    results = benchmark.pedantic(run, rounds=7, warmup_rounds=1)
    assert all(r.ok for r in results), [r.name for r in results if not r.ok]
    median = benchmark.stats.stats.median
    benchmark.extra_info["units"] = len(units)
    benchmark.extra_info["apdus"] = sum(r.apdus for r in results)
    benchmark.extra_info["cpu_ms"] = round(statistics.median(cpu[1:]) * 1000, 1)
    benchmark.extra_info["target_ms"] = CATALOGUE_TARGET * 1000
    benchmark.extra_info["ratio_to_target"] = round(median / CATALOGUE_TARGET, 3)


def test_bench_one_phantom_scenario(benchmark: Any) -> None:
    shared_pki()
    units = [u for u in all_units() if u.name == "phantom-app-retry"]
    results = benchmark(run_units, units)
    assert results[0].ok


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of *argv*, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_bench_run_all_command(benchmark: Any, tmp_path: Path) -> None:
    """``myna-hil run --all`` as a process, each round after a ``python -c pass`` (the
    baseline: what any Python command pays before its first import)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    startup: list[tuple[float, float]] = []
    cpu: list[float] = []

    def baseline() -> None:
        startup.append(_timed(STARTUP, env))

    def run() -> None:
        cpu.append(_timed(RUN_ALL, env)[1])

    benchmark.pedantic(run, setup=baseline, rounds=7, warmup_rounds=1)
    median = benchmark.stats.stats.median
    startup_wall = statistics.median(w for w, _ in startup[1:])
    benchmark.extra_info["cpu_ms"] = round(statistics.median(cpu[1:]) * 1000, 1)
    benchmark.extra_info["startup_ms"] = round(startup_wall * 1000, 1)
    benchmark.extra_info["startup_cpu_ms"] = round(
        statistics.median(c for _, c in startup[1:]) * 1000, 1
    )
    benchmark.extra_info["ratio_to_startup"] = round(median / startup_wall, 2)
    benchmark.extra_info["target_ms"] = RUN_ALL_TARGET * 1000
    benchmark.extra_info["ratio_to_target"] = round(median / RUN_ALL_TARGET, 3)
