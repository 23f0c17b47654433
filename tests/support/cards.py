"""Fast card construction for tests: RSA keys are generated once per test session."""

from __future__ import annotations

import functools
from typing import Any

from emulator.card import Card
from emulator.identity import generate_pki
from emulator.personalise import new_state
from emulator.state import CardState, Pki


@functools.cache
def template_pki() -> Pki:
    """One TEST PKI (four RSA-2048 keys) shared by every card of the test session."""
    return generate_pki(with_signing=True)


def fresh_state(**kwargs: Any) -> CardState:
    """A new card state reusing the session's keys: milliseconds instead of a second."""
    kwargs.setdefault("pki", template_pki())
    return new_state(**kwargs)


def fresh_card(**kwargs: Any) -> Card:
    return Card(fresh_state(**kwargs))
