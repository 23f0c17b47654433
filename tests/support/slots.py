"""One test at a time on a vpcd slot, across xdist workers and concurrent pytest runs."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: The lock file tests/harness/test_hil_interlocks.py and tests/realclients use too.
LOCK = "/tmp/myna-hil-vpcd-slot{slot}.lock"


@contextmanager
def slot_lock(slot: int, timeout: float = 300.0) -> Iterator[None]:
    """Exclusive use of vpcd slot *slot* (bounded wait; fails when it stays busy)."""
    path = Path(LOCK.format(slot=slot))
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"slot {slot} stayed busy (lock {path})", pytrace=False)
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
