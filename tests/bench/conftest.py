"""Benchmark report: after a ``--benchmark-only`` run, a table of every benchmark's median
and the ratios the benchmarks put in ``extra_info`` (``ratio_to_echo``, ``ratio_to_minimal``,
``ratio_to_openssl``, ``ratio_to_fsync_write``, ``ratio_to_atomic_write``,
``ratio_to_empty_tests``, APDU/s, p50/p99, memory per card, the catalogue's and
``run --all``'s ``ratio_to_target`` ...).

The same figures are in the JSON that ``tox -e bench`` saves (bench-results/benchmark.json);
``ci/bench-report.py`` prints this table again from that file.
"""

from __future__ import annotations

from typing import Any

import pytest

#: extra_info keys shown, in this order, when a benchmark has them.
COLUMNS = (
    "ratio_to_echo",
    "ratio_to_plain_echo",
    "echo_aa_ratio",
    "ratio_to_minimal",
    "ratio_to_openssl",
    "kib_per_card",
    "ratio_to_direct",
    "one_process_ratio_to_echo",
    "ratio_low",
    "ratio_high",
    "placement_bias",
    "ratio_to_fsync_write",
    "ratio_to_atomic_write",
    "ratio_to_empty_tests",
    "overhead_per_test_ms",
    "ratio_to_inprocess",
    "apdu_per_s",
    "echo_apdu_per_s",
    "verify_per_s",
    "p50_us",
    "p99_us",
    "added_p50_us",
    "added_p99_us",
    "durable_writes_per_apdu",
    "apdus",
    "slots",
    "serve_processes",
    "cpu_pcscd",
    "cpu_clients",
    "cpu_cards",
    "card_cpu_us_per_apdu",
    "echo_cpu_us_per_apdu",
    "cpu_ms",
    "startup_ms",
    "ratio_to_startup",
    "ratio_to_target",
    "min_ratio_to_target",
    "filed_ms",
    "filed_ratio_to_target",
    "filed_min_ratio_to_target",
    "service_ms",
    "reference_ms",
)


def ratio_table(rows: list[tuple[str, float, dict[str, Any]]]) -> list[str]:
    """Lines of a plain-text table: name, median (µs) and the known extra_info columns."""
    used = [c for c in COLUMNS if any(c in extra for _, _, extra in rows)]
    head = ["benchmark", "median µs", *used]
    body = [
        [name, f"{median * 1e6:.1f}", *(_cell(extra.get(c)) for c in used)]
        for name, median, extra in rows
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [
        fmt.format(*head),
        fmt.format(*("-" * w for w in widths)),
        *(fmt.format(*r) for r in body),
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    benchmarks = getattr(session, "benchmarks", None) or []
    rows = [
        (b.name, b.stats.median, dict(b.extra_info))
        for b in benchmarks
        if getattr(b, "stats", None) is not None and b.stats.data  # a failed one has none
    ]
    if not rows:
        return
    terminalreporter.section("benchmark ratios (extra_info)")
    for line in ratio_table(rows):
        terminalreporter.write_line(line)
