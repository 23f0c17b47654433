"""Fixtures for the reliability tests: slots of their own, budgets from the environment.

Slots (``myna-emu serve --slot N``; ci/test.sh starts six, MYNA_VPCD_EXTRA=2): tearing uses
slot 3, the soak run slots 4 and 5. Slots 0-2 belong to other suites running at the same
time. The frame fuzzer plays vpcd itself on a free localhost port and needs no slot.
"""

from __future__ import annotations

import os

import pytest

from tests.support.pcscd import ensure_pcscd

TEARING_SLOT = 3
SOAK_SLOTS = (4, 5)


def budget(name: str, default: int) -> int:
    """An integer budget from the environment (``MYNA_TEARING_KILLS`` ...), else ``default``."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@pytest.fixture(scope="session")
def pcscd() -> None:
    """A running pcscd with the vpcd readers (skipped, or failed under CI, if impossible)."""
    ensure_pcscd()
