"""Destructive: only on the test card named by --destructive-card ID.

The guard decides (:func:`harness.hil.guard.refusal`) before any APDU: without the opt-in every
test here is skipped with the guard's reason. Steps that block a PIN need --allow-blocking
as well. The catalogue's scenarios re-set the PINs afterwards with the TEST issuer key, so on
a real test card a blocking scenario leaves the PIN blocked (a trip to the counter).
"""

from __future__ import annotations

import pytest

from harness.errors import WrongPinError
from harness.hil.guard import refusal
from harness.hil.session import HilCard, Secret
from harness.scenarios.base import Scenario
from harness.scenarios.runner import Unit, all_units, run_unit
from harness.sessions import JpkiSession

pytestmark = pytest.mark.hil

UNITS = [u for u in all_units() if u.scenario.destructive and not u.scenario.needs_admin]
#: A guard-level stand-in for "a destructive step that does not block".
_WRONG_ONCE = Scenario(
    "wrong-pin-once", "one wrong auth PIN, then the right one", lambda ctx: None, destructive=True
)


def test_wrong_pin_costs_one_try_and_the_right_one_restores(
    hil: HilCard, auth_pin: Secret | None
) -> None:
    if not hil.permit.destructive:
        pytest.skip(refusal(_WRONG_ONCE, hil.transport, hil.permit) or "")
    if auth_pin is None:
        pytest.skip("needs the test card's auth PIN (MYNA_AUTH_PIN or --prompt-pin)")
    jpki = JpkiSession(hil.transport)
    before = jpki.pin_status("auth").tries_left
    wrong = "0000" if auth_pin.reveal() != "0000" else "1111"
    with pytest.raises(WrongPinError) as exc:
        jpki.verify("auth", wrong)
    assert before is not None and exc.value.tries_left == before - 1
    jpki.verify("auth", auth_pin.reveal())
    assert jpki.pin_status("auth").tries_left == before


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_scenario(hil: HilCard, unit: Unit) -> None:
    why = refusal(unit.scenario, hil.transport, hil.permit)
    if why:
        pytest.skip(why)  # decided before any APDU of the scenario
    result, _ = run_unit(unit, hil.opener(), interlocks=hil.interlocks)
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.ok, (result.error, [s for s in result.steps if not s.ok])
