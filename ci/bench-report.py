#!/usr/bin/env python3
"""Print the benchmark ratio table from a pytest-benchmark JSON file.

Usage: python ci/bench-report.py [bench-results/benchmark.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bench.conftest import ratio_table


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "bench-results/benchmark.json")
    doc = json.loads(path.read_text())
    rows = [(b["name"], b["stats"]["median"], b.get("extra_info", {})) for b in doc["benchmarks"]]
    machine = doc.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "")
    print(f"{doc.get('datetime', '?')}  {machine.get('node', '?')}  {cpu}")
    for line in ratio_table(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
