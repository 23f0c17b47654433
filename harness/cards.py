"""Cards for in-process runs: one TEST PKI per process, a fixed holder, admin hooks.

Below the scenarios: the test controls (:mod:`harness.controls`), the pytest plugin, the
scenario runner and the CLI all make their cards here.

The cards use the published TEST keys (docs/card.md#test-keys): no key is generated unless
fresh keys are asked for; then every scenario card of a run reuses one PKI, so
``myna-hil run --all`` pays for key generation once.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
from typing import TYPE_CHECKING, Any

from emulator.card import Card
from emulator.identity import (
    FRESH_KEYS_ENV,
    check_number_a,
    check_number_b,
    generate_pki,
    my_number_check_digit,
)
from emulator.personalise import new_state
from emulator.pins import DEFAULT_PINS
from emulator.profiles import DEFAULT_ATR_FORM
from emulator.protocol import CHECK_NUMBERS, Pin
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
    """The run's TEST PKI (with a signing key, kept as the spare for re-issuing): the
    published TEST keys with certificates of its own, or fresh keys (:func:`use_fresh_keys`)."""
    return generate_pki(with_signing=True, issued=CERTIFICATES_ISSUED, birth_date=HOLDER.birth_date)


def use_fresh_keys() -> None:
    """Give the cards of this process, and of processes it starts, newly generated RSA keys
    instead of the published TEST keys (``myna-hil run --fresh-keys``, pytest
    ``--myna-fresh-keys``): sets ``MYNA_HIL_FRESH_KEYS`` and forgets the keys made so far."""
    os.environ[FRESH_KEYS_ENV] = "1"
    shared_pki.cache_clear()
    _POOL.clear()


def new_state_for(
    profile: str = "standard",
    pki: Pki | None = None,
    *,
    atr_form: str = DEFAULT_ATR_FORM,
    check_numbers: bool = True,
) -> CardState:
    """A freshly issued state: default PINs, the run's keys, :data:`HOLDER`; without
    *check_numbers*, a card issued before they existed (no check-number EFs)."""
    state = new_state(
        profile=profile, pki=pki or shared_pki(), holder=copy.copy(HOLDER), atr_form=atr_form
    )
    if not check_numbers:
        for name in CHECK_NUMBERS:
            state.pins.pop(name, None)
    return state


def new_card(profile: str = "standard", pki: Pki | None = None, **issue: Any) -> Card:
    """A fresh in-memory card with the default PINs and the run's keys (*issue*: the
    keywords of :func:`new_state_for`)."""
    return Card(new_state_for(profile, pki, **issue))


class CardPool:
    """Cards in a freshly issued state, reusing the card objects of earlier users.

    Building a card parses its RSA keys (about 50 ms each with key validation); every card
    of a run has the same keys and holder, so the parsed applications can be kept and only
    the state (PIN records, counters, quirks) replaced. A card whose profile or ATR a user
    changed is built again. In-process only; a card from the pool is valid until the next
    :meth:`get` of the same kind, so each user (the scenario runner, the pytest plugin)
    has its own pool.
    """

    def __init__(self) -> None:
        self._cards: dict[tuple[str, str, bool], Card] = {}

    def clear(self) -> None:
        """Forget every card (new keys: the next :meth:`get` builds afresh)."""
        self._cards.clear()

    def get(
        self,
        profile: str = "standard",
        *,
        atr_form: str = DEFAULT_ATR_FORM,
        check_numbers: bool = True,
    ) -> Card:
        key = (profile, atr_form, check_numbers)
        card = self._cards.get(key)
        issue: dict[str, Any] = {"atr_form": atr_form, "check_numbers": check_numbers}
        if card is None or (card.state.profile, card.state.atr_form) != (profile, atr_form):
            card = self._cards[key] = new_card(profile, **issue)
            return card
        card.reissue_in_memory(new_state_for(profile, **issue))
        return card


_POOL = CardPool()


def pooled_card(profile: str = "standard") -> Card:
    """A card in a freshly issued state from the scenario runner's :class:`CardPool`."""
    return _POOL.get(profile)


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
