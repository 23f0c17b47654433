"""``myna-hil soak``: a short soak run in slots 4 and 5, a short tearing run in slot 3, and
the usage errors. Long runs: ``myna-hil soak --minutes 10 --slots 4,5``."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.reliability.soak import Histogram, SlotStats, SoakResult
from tests.reliability.conftest import SOAK_SLOTS, TEARING_SLOT, budget
from tests.support.slots import slot_lock

SOAK_SECONDS = budget("MYNA_SOAK_SECONDS", 5)


@pytest.mark.vpcd
@pytest.mark.slow
@pytest.mark.usefixtures("pcscd")
def test_soak_drives_both_slots_without_errors(capsys: pytest.CaptureFixture[str]) -> None:
    slots = ",".join(map(str, SOAK_SLOTS))
    with slot_lock(SOAK_SLOTS[0]), slot_lock(SOAK_SLOTS[1]):  # the tap's tests use them too
        status = main(["soak", "--seconds", str(SOAK_SECONDS), "--slots", slots])
    out = capsys.readouterr().out
    assert status == 0, out
    assert ", 0 errors" in out and "(emulator)" in out and "(echo)" in out, out
    assert "PASS" in out


@pytest.mark.vpcd
@pytest.mark.usefixtures("pcscd")
def test_soak_tearing_option_runs_the_tearing_engine(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["soak", "--tearing", "2", "--slots", str(TEARING_SLOT), "--seed", "6"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "2 kills" in out and "0 violations" in out, out


@pytest.mark.parametrize(
    "argv",
    [
        ["soak", "--slots", "4,x"],
        ["soak", "--slots", "4,4"],
        ["soak", "--slots", "1,2,3"],
        ["soak", "--seconds", "0", "--slots", "4"],
        ["soak", "--tearing", "0", "--slots", "3"],
    ],
)
def test_soak_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_report_fails_on_errors_and_on_memory_growth() -> None:
    good = SoakResult(
        seconds=1.0,
        slots=[SlotStats(4, "emulator", apdus=10)],
        rss_start_kib=1000,
        rss_end_kib=1049,
    )
    assert good.ok and good.report().endswith("PASS")
    grown = SoakResult(
        seconds=1.0,
        slots=[SlotStats(4, "emulator", apdus=10)],
        rss_start_kib=1000,
        rss_end_kib=1050,
    )
    assert not grown.ok and "+5.0 %" in grown.report()
    failed = SoakResult(
        seconds=1.0,
        slots=[SlotStats(4, "emulator", apdus=10, errors=1)],
        rss_start_kib=1000,
        rss_end_kib=1000,
    )
    assert not failed.ok


def test_histogram_quantiles_within_one_percent() -> None:
    h = Histogram()
    for i in range(1, 1001):
        h.add(i * 1e-6)
    assert h.quantile(0.5) == pytest.approx(500e-6, rel=0.02)
    assert h.quantile(0.99) == pytest.approx(990e-6, rel=0.02)
    assert h.max == pytest.approx(1000e-6)
