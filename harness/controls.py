"""Test controls of a card beyond APDUs: fault injection, quirks, PIN state, profile.

Only an in-process card has them (:class:`InProcessCard`); a replayed trace accepts them as
no-ops (:class:`ReplayControls`: the trace already holds what the card did); a reader has
none, so scenarios that need them are refused there.
"""

from __future__ import annotations

from typing import Protocol

from emulator.card import Card
from emulator.protocol import PIN_ORDER
from harness.cards import profile_changer
from harness.inprocess import InProcessTransport

PIN_NAMES = PIN_ORDER


class CardControls(Protocol):
    def tear_after_decrement(self, count: int = 1) -> None: ...

    def set_quirks(self, **flags: bool) -> None: ...

    def change_profile(self, profile: str, auth: str | None, sign: str | None) -> None: ...


class InProcessCard:
    """An emulated card in this process, its transport and its state controls.

    This is what the pytest fixture ``myna_card`` yields::

        myna_card.block("auth")                 # counter to 0
        myna_card.set_tries("sign", 1)
        myna_card.set_pins(auth="1111")         # new value, counter restored
        myna_card.set_quirks(status_9000_after_verify=True)
        myna_card.set_quirks(reselect_keeps_verification=True)
        myna_card.change_profile("face-auth")
        rsp = myna_card.transport.transmit(apdu)
    """

    def __init__(self, card: Card, transport: InProcessTransport | None = None) -> None:
        self.card = card
        self.transport = transport if transport is not None else InProcessTransport(card)

    def __repr__(self) -> str:
        return f"InProcessCard(profile={self.card.state.profile!r})"

    @property
    def profile(self) -> str:
        return self.card.state.profile

    # --- PIN state ----------------------------------------------------------------------

    def set_pins(self, **values: str) -> None:
        """New values (as a counter re-set would); each counter goes back to its maximum."""
        for name, value in values.items():
            self.card.set_pin(name, value)

    def set_pin(self, name: str, value: str) -> None:
        self.card.set_pin(name, value)

    def set_tries(self, name: str, tries: int) -> None:
        self.card.set_tries(name, tries)

    def block(self, *names: str) -> None:
        for name in names or PIN_NAMES:
            if name in self.card.state.pins:
                self.card.block(name)

    def tries_left(self, name: str) -> int:
        """The counter as the card holds it (read directly; spends nothing, sends nothing)."""
        return self.card.pin_record(name).tries_left

    # --- behaviour ----------------------------------------------------------------------

    def set_quirks(self, **flags: bool) -> None:
        self.card.set_quirks(**flags)

    def tear_after_decrement(self, count: int = 1) -> None:
        """Lose power on the next *count* VERIFYs with data, right after the decrement."""
        self.card.faults.tear_after_decrement = count

    def change_profile(
        self, profile: str, auth: str | None = None, sign: str | None = None
    ) -> None:
        """[model] The counter's profile change (face-auth <-> PIN card)."""
        profile_changer(self.card)(profile, auth, sign)


class ReplayControls:
    """Controls for a replayed run: the trace already contains their effect."""

    def tear_after_decrement(self, count: int = 1) -> None:
        pass

    def set_quirks(self, **flags: bool) -> None:
        pass

    def change_profile(self, profile: str, auth: str | None, sign: str | None) -> None:
        pass
