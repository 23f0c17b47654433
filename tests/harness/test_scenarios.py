"""The catalogue: every unit passes on the emulator, failures are detected, names resolved."""

from __future__ import annotations

import pytest

from emulator.identity import certificate_serial
from harness.cards import new_card
from harness.hil.guard import Interlocks, authorise, refusal
from harness.scenarios.base import REGISTRY
from harness.scenarios.runner import (
    UnknownScenarioError,
    all_units,
    reader_opener,
    renamed,
    run_unit,
    select_units,
)
from tests.harness.support import PhysicalLike, opener_for, unit

CATALOGUE = {
    "lockout-auth",
    "lockout-sign",
    "lockout-helper",
    "lockout-juki",
    "kiosk-reset-auth",
    "kiosk-reset-sign",
    "kiosk-expired",
    "kiosk-both-blocked",
    "kiosk-ineligible",
    "counter-reset-all",
    "counter-representative",
    "face-auth-card",
    "phantom-tearing",
    "phantom-app-retry",
    "phantom-status-quirk",
}


def test_every_scenario_of_scenarios_md_is_registered() -> None:
    assert set(REGISTRY) >= CATALOGUE


@pytest.mark.parametrize("name", [u.name for u in all_units()])
def test_unit_passes_in_process(name: str) -> None:
    result, rec = run_unit(unit(name))
    assert result.error is None and result.skipped is None
    assert result.steps and all(s.ok for s in result.steps), [s for s in result.steps if not s.ok]
    assert rec is not None and result.apdus == rec.apdus > 0


def test_units_on_both_profiles_where_they_apply() -> None:
    names = {u.name for u in all_units()}
    for base in (
        "lockout-helper",
        "lockout-juki",
        "counter-reset-all",
        "counter-representative",
        "kiosk-ineligible",
    ):
        assert {base, f"{base}@face-auth"} <= names
    assert [u.profile for u in select_units(["face-auth-card"])] == ["face-auth"]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownScenarioError) as e:
        select_units(["lockout-everything"])
    msg = str(e.value)
    assert "lockout-everything" in msg and all(n in msg for n in CATALOGUE)


def test_selection_by_scenario_or_unit() -> None:
    assert [u.name for u in select_units(["lockout-helper"])] == [
        "lockout-helper",
        "lockout-helper@face-auth",
    ]
    assert [u.name for u in select_units(["lockout-helper@face-auth"])] == [
        "lockout-helper@face-auth"
    ]


def test_the_former_name_of_a_scenario_still_selects_it() -> None:
    # lockout-text locks the input-helper PIN, whose one name is "helper".
    assert [u.name for u in select_units(["lockout-text@face-auth"])] == [
        "lockout-helper@face-auth"
    ]
    assert renamed(["lockout-text", "lockout-auth"]) == [("lockout-text", "lockout-helper")]


def test_a_wrong_card_fails_the_scenario() -> None:
    card = new_card()
    card.set_tries("auth", 1)  # somebody already spent two tries
    result, _ = run_unit(unit("lockout-auth"), opener_for(card))
    assert not result.ok
    bad = [s for s in result.steps if not s.ok]
    assert bad[0].step == "counters before" and "auth 1/3" in bad[0].got


def test_a_password_the_holder_does_not_know_fails_the_kiosk_scenario() -> None:
    card = new_card()
    card.set_pin("sign", "OTHER1")  # the holder does not know this value
    result, _ = run_unit(unit("kiosk-reset-auth"), opener_for(card))
    assert not result.ok


def test_guard_refuses_destructive_and_in_process_scenarios_on_a_reader() -> None:
    t = PhysicalLike(new_card())
    card_id = certificate_serial(t.card.state.pki.auth_cert)
    plain = authorise(t, Interlocks())
    named = authorise(t, Interlocks(destructive_card=card_id))
    blocking = authorise(t, Interlocks(destructive_card=card_id, allow_blocking=True))
    assert refusal(REGISTRY["card-info"], t, plain) is None
    assert "destructive" in (refusal(REGISTRY["lockout-auth"], t, plain) or "")
    assert "--allow-blocking" in (refusal(REGISTRY["lockout-auth"], t, named) or "")
    assert refusal(REGISTRY["lockout-auth"], t, blocking) is None
    assert "in-process" in (refusal(REGISTRY["phantom-tearing"], t, blocking) or "")
    inproc = PhysicalLike.__mro__[1](new_card())
    assert refusal(REGISTRY["lockout-auth"], inproc, authorise(inproc, Interlocks())) is None


def test_reader_run_refuses_without_opt_in_and_sends_no_verify() -> None:
    card = new_card()
    result, rec = run_unit(unit("lockout-auth"), reader_opener(lambda: PhysicalLike(card)))
    assert result.skipped and "destructive" in result.skipped
    assert rec is None
    assert card.pin_record("auth").tries_left == 3


def test_reader_run_with_opt_in_restores_the_card() -> None:
    card = new_card()  # a virtual card behind a "reader": the TEST issuer key works
    opener = reader_opener(lambda: PhysicalLike(card))
    for name in ("kiosk-reset-auth", "lockout-sign", "card-info"):
        card_id = certificate_serial(card.state.pki.auth_cert)
        opt_in = Interlocks(destructive_card=card_id, allow_blocking=True)
        result, _ = run_unit(unit(name), opener, interlocks=opt_in)
        assert result.ok, (name, result.error, [s for s in result.steps if not s.ok])
    assert all(r.tries_left == r.max_tries for r in card.state.pins.values())


def test_reader_run_skips_units_of_the_other_profile() -> None:
    card = new_card()
    result, _ = run_unit(unit("card-info@face-auth"), reader_opener(lambda: PhysicalLike(card)))
    assert result.skipped == "the card in the reader is a standard card"
