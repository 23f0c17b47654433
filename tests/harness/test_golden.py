"""Every scenario's trace, normalised, equals its committed golden trace.

Regenerate after an intended change: ``.venv/bin/myna-hil trace golden --update``.
"""

from __future__ import annotations

import dataclasses

import pytest

from harness.scenarios.runner import all_units
from harness.trace import golden
from harness.trace.records import Rsp
from tests.harness.support import record


@pytest.mark.parametrize("name", [u.name for u in all_units()])
def test_matches_golden(name: str) -> None:
    diff = golden.compare(name, record(name))
    assert diff is None, f"{diff}\n(regenerate: myna-hil trace golden --update)"


def test_normalisation_keeps_equality_and_hides_randomness() -> None:
    a, b = (
        golden.normalise(record("phantom-app-retry")),
        golden.normalise(record("phantom-app-retry")),
    )
    assert a == b
    text = golden.dumps(a)
    assert "<signature 256 bytes>9000" in text and '"fp": "F1"' in text
    assert '"time"' not in text and "latency_ms" not in text


def test_a_changed_run_shows_a_diff() -> None:
    records = record("lockout-juki")
    n = next(n for n, r in enumerate(records) if isinstance(r, Rsp) and r.sw == 0x63C2)
    records[n] = dataclasses.replace(records[n], sw=0x63C1)
    diff = golden.compare("lockout-juki", records)
    assert diff is not None and "63C1" in diff
