"""Test controls of a card beyond APDUs: fault injection, quirks, PIN state, profile.

Only an in-process card has them (:class:`InProcessCard`); a replayed trace accepts them as
no-ops (:class:`ReplayControls`: the trace already holds what the card did); a reader has
none, so scenarios that need them are refused there.

Every name a control takes -- a PIN, a quirk, a profile, an ATR form -- is checked against
the card's tables first: a typo is an :class:`UnknownNameError` listing the known names, never
a control that silently does nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields
from typing import Protocol

from emulator.card import Card
from emulator.profiles import ATRS, PROFILES
from emulator.protocol import CHECK_NUMBERS, OPTIONAL_PINS, PIN_ORDER, SPECS
from emulator.state import Quirks
from harness.cards import profile_changer
from harness.inprocess import InProcessTransport
from harness.trace.recorder import TraceLog
from harness.transport import Transport

#: The four PINs the holder chooses, in display order (``block()`` with no name blocks them).
PIN_NAMES = PIN_ORDER
#: Every secret a control may name: the four PINs, the common AP's PIN, the check numbers.
ALL_PIN_NAMES: tuple[str, ...] = (*PIN_ORDER, *OPTIONAL_PINS, *CHECK_NUMBERS)
QUIRK_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Quirks))
PROFILE_NAMES: tuple[str, ...] = tuple(str(p) for p in PROFILES)
ATR_FORMS: tuple[str, ...] = tuple(ATRS)
assert set(ALL_PIN_NAMES) == set(SPECS), "a secret is missing from ALL_PIN_NAMES"


class UnknownNameError(ValueError):
    """A name the card does not know (a PIN, a quirk, a profile, an ATR form); the message
    lists the known ones and, for a near miss, the one probably meant."""

    def __init__(self, kind: str, name: object, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, tuple(str(k) for k in known)
        close = difflib.get_close_matches(str(name), self.known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint}; known: {', '.join(self.known)}")


def check_name(kind: str, name: object, known: Iterable[str]) -> str:
    """*name* if it is one of *known*, else :class:`UnknownNameError`."""
    known = tuple(str(k) for k in known)
    if not isinstance(name, str) or name not in known:
        raise UnknownNameError(kind, name, known)
    return name


def check_pin(name: object) -> str:
    return check_name("PIN", name, ALL_PIN_NAMES)


def check_quirk(name: object) -> str:
    return check_name("quirk", name, QUIRK_NAMES)


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

    With *log* (the test's trace), every control is recorded there as a ``control`` record
    (the PIN's name and the tries, never a value), so ``trace explain`` knows a re-set PIN
    has a new value. *exclusive* is held around each control (a served card's lock).
    """

    def __init__(
        self,
        card: Card,
        transport: Transport | None = None,
        *,
        log: TraceLog | None = None,
        exclusive: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self.card = card
        self.transport: Transport = transport if transport is not None else InProcessTransport(card)
        self.log = log
        #: Held around every control: a served card's lock, so no APDU runs meanwhile.
        self.exclusive = exclusive

    def __repr__(self) -> str:
        return f"InProcessCard(profile={self.card.state.profile!r})"

    @property
    def profile(self) -> str:
        return self.card.state.profile

    def _record(self, action: str, pin: str | None = None, tries: int | None = None) -> None:
        if self.log is not None:
            self.log.control("test", action, pin=pin, tries=tries)

    # --- PIN state ----------------------------------------------------------------------

    def set_pins(self, **values: str) -> None:
        """New values (as a counter re-set would); each counter goes back to its maximum."""
        for name in values:
            check_pin(name)
        for name, value in values.items():
            self.set_pin(name, value)

    def set_pin(self, name: str, value: str) -> None:
        with self.exclusive():
            self.card.set_pin(check_pin(name), value)
            self._record("set-pin", name, self.card.state.pins[name].tries_left)

    def set_tries(self, name: str, tries: int) -> None:
        with self.exclusive():
            self.card.set_tries(check_pin(name), tries)
            self._record("set-tries", name, tries)

    def block(self, *names: str) -> None:
        """Counters to 0: the PINs named, or with no name every PIN of the four this card has."""
        for name in names:
            check_pin(name)
        if names:
            for name in names:
                self.set_tries(name, 0)
            return
        for name in PIN_NAMES:
            if name in self.card.state.pins:
                self.set_tries(name, 0)

    def tries_left(self, name: str) -> int:
        """The counter as the card holds it (read directly; spends nothing, sends nothing)."""
        with self.exclusive():
            return self.card.pin_record(check_pin(name)).tries_left

    # --- behaviour ----------------------------------------------------------------------

    def set_quirks(self, **flags: bool) -> None:
        for name in flags:
            check_quirk(name)
        with self.exclusive():
            self.card.set_quirks(**flags)
            self._record("set-quirks")

    def set_atr_form(self, form: str) -> None:
        """The ATR the card answers from its next power-on or reset."""
        with self.exclusive():
            self.card.set_atr_form(check_name("ATR form", form, ATR_FORMS))
            self._record("set-atr")

    def tear_after_decrement(self, count: int = 1) -> None:
        """Lose power on the next *count* VERIFYs with data, right after the decrement."""
        with self.exclusive():
            self.card.faults.tear_after_decrement = count
            self._record("tear-after-decrement")

    def change_profile(
        self, profile: str, auth: str | None = None, sign: str | None = None
    ) -> None:
        """[model] The counter's profile change (face-auth <-> PIN card)."""
        with self.exclusive():
            profile_changer(self.card)(check_name("profile", profile, PROFILE_NAMES), auth, sign)
            self._record("change-profile")
            for name, value in (("auth", auth), ("sign", sign)):
                if value is not None:
                    self._record("set-pin", name)


class ReplayControls:
    """Controls for a replayed run: the trace already contains their effect."""

    def tear_after_decrement(self, count: int = 1) -> None:
        pass

    def set_quirks(self, **flags: bool) -> None:
        pass

    def change_profile(self, profile: str, auth: str | None, sign: str | None) -> None:
        pass
