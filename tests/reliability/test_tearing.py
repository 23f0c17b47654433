"""Tearing through the real stack: SIGKILL ``myna-emu serve`` mid-command, restart, check.

The engine is :mod:`harness.reliability.tearing` (``myna-hil soak --tearing N`` runs more);
each kill is followed by a check of a copy of the state file against what the card answered:
the file loads, answered changes are kept, counters never rise without a correct PIN or an
issuer re-set, and the torn command is all there or not at all.

Budget: ``MYNA_TEARING_KILLS`` kills (default 40, about 0.8 s each) in slot 3, bounded by
``MYNA_TEARING_SECONDS`` (default 120) of wall time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.reliability.slots import SlotBusyError
from harness.reliability.tearing import run_tearing
from tests.reliability.conftest import TEARING_SLOT, budget

pytestmark = [pytest.mark.vpcd, pytest.mark.slow, pytest.mark.usefixtures("pcscd")]

KILLS = budget("MYNA_TEARING_KILLS", 40)
SECONDS = budget("MYNA_TEARING_SECONDS", 120)


def test_sigkill_mid_command_never_corrupts_or_forges_state(tmp_path: Path) -> None:
    try:
        result = run_tearing(KILLS, TEARING_SLOT, workdir=tmp_path, deadline=SECONDS)
    except SlotBusyError as exc:
        pytest.fail(f"slot {TEARING_SLOT} unusable: {exc}", pytrace=False)
    print(result.summary())
    assert not result.violations, "\n".join([result.summary(), *result.violations])
    assert result.kills >= min(KILLS, 10), result.summary()
    # The run must actually tear commands, not only kill between them.
    assert sum(result.torn.values()) >= result.kills // 3, result.summary()
