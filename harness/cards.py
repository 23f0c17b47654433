"""Cards for in-process runs: one TEST PKI per process, a fixed holder, admin hooks.

Below the scenarios: the test controls (:mod:`harness.controls`), the pytest plugin, the
scenario runner and the CLI all make their cards here.

Key generation (five RSA-2048 keys) is the slow part of making a card; every scenario card
of a run reuses one PKI, so ``myna-hil run --all`` pays for it once.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from typing import TYPE_CHECKING

from emulator.card import Card
from emulator.identity import (
    check_number_a,
    check_number_b,
    generate_pki,
    my_number_check_digit,
)
from emulator.personalise import new_state
from emulator.pins import DEFAULT_PINS
from emulator.protocol import Pin
from emulator.state import CardState, Holder, Pki
from harness.clock import EPOCH

if TYPE_CHECKING:
    from harness.actors.counter import ProfileChanger


_FIRST11 = "12345678901"
#: A fixed, fictitious holder so that traces of the text AP are reproducible.
HOLDER = Holder(
    name="試験 花子",
    address="東京都千代田区霞が関二丁目1番2号",
    birth_date="19900401",
    sex="2",
    my_number=_FIRST11 + str(my_number_check_digit(_FIRST11)),
    expiry="20300401",
    security_code="1357",
)


#: When the run's certificates were issued: a month before scenario time starts, so they are
#: valid on the scenario clock and expire on :data:`HOLDER`'s fifth birthday after it
#: (2030-04-01, 23:59:59 Japan time), the same for every run.
CERTIFICATES_ISSUED = EPOCH - dt.timedelta(days=30)


@functools.cache
def shared_pki() -> Pki:
    """The run's TEST PKI (with a signing key, kept as the spare for re-issuing)."""
    return generate_pki(with_signing=True, issued=CERTIFICATES_ISSUED, birth_date=HOLDER.birth_date)


def new_state_for(profile: str = "standard", pki: Pki | None = None) -> CardState:
    return new_state(profile=profile, pki=pki or shared_pki(), holder=copy.copy(HOLDER))


def new_card(profile: str = "standard", pki: Pki | None = None) -> Card:
    """A fresh in-memory card with the default PINs and the run's keys."""
    return Card(new_state_for(profile, pki))


_POOL: dict[str, Card] = {}


def pooled_card(profile: str = "standard") -> Card:
    """A card in a freshly issued state, reusing the card object of an earlier unit.

    Building a card parses its RSA keys (about 50 ms each with key validation); every card
    of a run has the same keys and holder, so the parsed applications can be kept and only
    the state (PIN records, counters, quirks) replaced. A card whose profile a scenario
    changed is not reused. In-process only.
    """
    card = _POOL.get(profile)
    if card is None or card.state.profile != profile:
        card = _POOL[profile] = new_card(profile)
        return card
    card.reissue_in_memory(new_state_for(profile))
    return card


def default_pins(profile: str = "standard", *, check_numbers: bool = False) -> dict[str, str]:
    """The PINs of a fresh card; with *check_numbers*, also the check numbers printed on the
    face of a card this module issued (:data:`HOLDER`): only for such cards, never for a card
    in a reader, whose face the harness cannot read."""
    pins = dict(DEFAULT_PINS)
    if profile == "face-auth":
        del pins["auth"], pins["sign"]
    if check_numbers:
        a, b = check_number_a(HOLDER), check_number_b(HOLDER)
        pins.update({Pin.TEXT_A: a, Pin.TEXT_B: b, Pin.SURFACE_A: a, Pin.SURFACE_B: b})
    return pins


def profile_changer(card: Card, pki: Pki | None = None) -> ProfileChanger:
    """The counter's [model] profile change for an in-process card (no APDU exists for it).

    Re-issuing the signing certificate would generate a key; in memory mode the run's
    spare signing key and certificate stand in for the newly issued ones.
    """
    spare = pki or shared_pki()

    def change(profile: str, auth: str | None, sign: str | None) -> None:
        if profile == "standard" and card.state.pki.sign_key is None:
            card.state.pki.sign_key = spare.sign_key
            card.state.pki.sign_cert = spare.sign_cert
        card.set_profile(profile, auth=auth, sign=sign)

    return change
