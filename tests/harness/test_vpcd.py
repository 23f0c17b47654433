"""End to end: the catalogue through pcscd + vpcd, the virtual card opted in by its fixture.

Every PC/SC card counts as physical, so the guard applies: the destructive units run only
because this fixture started the card itself and opts it in by its identity; in-process-only
units and the other profile's units are skipped with their reason.
"""

from __future__ import annotations

import pytest

from emulator.identity import check_number_a, check_number_b
from harness.cards import default_pins
from harness.hil.guard import Interlocks
from harness.pytest_plugin import VpcdCard
from harness.scenarios.runner import all_units, reader_opener, run_unit

pytestmark = pytest.mark.vpcd


def test_catalogue_through_vpcd(myna_vpcd_card: VpcdCard) -> None:
    pcsc = pytest.importorskip("harness.hil.pcsc")
    opener = reader_opener(lambda: pcsc.PcscTransport(myna_vpcd_card.reader))
    # The opt-in is the identity of the card this fixture created, as a user would name it.
    opt_in = Interlocks(destructive_card=myna_vpcd_card.card_id, allow_blocking=True)
    ran = skipped = 0
    # The holder reads the check numbers off the card's face; the harness cannot (it skips
    # the units that need them without): hand them over with the PINs.
    holder = myna_vpcd_card.card.state.holder
    a, b = check_number_a(holder), check_number_b(holder)
    for unit in all_units():
        pins = {
            **default_pins(unit.profile),
            "text-a": a,
            "text-b": b,
            "surface-a": a,
            "surface-b": b,
        }
        result, _ = run_unit(unit, opener, interlocks=opt_in, pins=pins)
        if result.skipped:
            skipped += 1
            assert unit.scenario.needs_admin or unit.profile != "standard", result.skipped
            continue
        ran += 1
        assert result.ok, (unit.name, result.error, [s for s in result.steps if not s.ok])
    assert ran >= 13 and skipped
    card = myna_vpcd_card
    assert all(
        card.tries_left(n) == m
        for n, m in (("auth", 3), ("sign", 5), ("juki", 3), ("helper", 3), ("text-b", 10))
    )


def test_without_opt_in_nothing_is_spent(myna_vpcd_card: VpcdCard) -> None:
    pcsc = pytest.importorskip("harness.hil.pcsc")
    opener = reader_opener(lambda: pcsc.PcscTransport(myna_vpcd_card.reader))
    for unit in all_units():
        result, _ = run_unit(unit, opener)
        assert result.skipped or not unit.scenario.destructive
    assert myna_vpcd_card.card.store.writes == 0
