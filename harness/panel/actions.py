"""The panel's controls: each click is one call here, run in a worker thread.

Card changes go through the card's own controls (``Card.set_tries``, ``block``, ``set_pin``,
``set_quirks``, ``set_profile``, ``set_atr_form``, ``faults``) under the server's card lock,
so no APDU is in flight meanwhile, and through the card's store, so they are durable and
safe against other processes sharing the card file. The reader controls pull and push the
card as a hand would. A PIN value given here is never returned, logged or traced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from emulator.card import Card
from emulator.personalise import new_state
from emulator.state import StateError
from emulator.store import SqliteStore, StoreError
from emulator.vpcd import VpcdServer

__all__ = ["ControlError", "Done", "run_control"]

#: How long a pulled card stays out: pcscd's presence poll (~0.4 s) must see it gone.
OUT_OF_READER = 1.0


class ControlError(Exception):
    """The control cannot be done as asked (one line for the page, never a PIN value)."""


@dataclass(frozen=True)
class Done:
    """What a control did: the trace's ``action``, the log's text, and the PIN it touched."""

    action: str
    text: str
    pin: str | None = None
    tries: int | None = None


def run_control(server: VpcdServer, action: str, args: dict[str, Any]) -> Done:
    """Do *action* on the slot of *server*; :class:`ControlError` when it cannot be done."""
    try:
        if action == "remove":
            server.eject()
            return Done(action, "card removed from the reader")
        if action == "insert":
            server.insert()
            return Done(action, "card inserted into the reader")
        if action == "power-cycle":
            replug(server)
            return Done(action, "power cycled (out of the reader and back)")
        if action == "new-card":
            return _new_card(server)
        return _card_control(server, action, args)
    except (ValueError, KeyError, StateError, StoreError) as exc:
        raise ControlError(str(exc).strip("'\"")) from None


def replug(server: VpcdServer) -> None:
    """Pull the card and put it back once pcscd has seen it gone (power lost, then back)."""
    server.eject()
    deadline = time.monotonic() + 3.0
    while server.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(OUT_OF_READER)
    server.insert()


def _pin(card: Card, args: dict[str, Any]) -> str:
    name = args.get("pin")
    if not isinstance(name, str) or name not in card.state.pins:
        raise ControlError(f"this {card.state.profile} card has no PIN {name!r}")
    return name


def _card_control(server: VpcdServer, action: str, args: dict[str, Any]) -> Done:
    with server.exclusive() as card:
        if not isinstance(card, Card):
            raise ControlError(f"{type(card).__name__} has no {action} control")
        if action == "set-tries":
            pin, tries = _pin(card, args), args.get("tries")
            if not isinstance(tries, int) or isinstance(tries, bool):
                raise ControlError("tries must be a number")
            card.set_tries(pin, tries)
            return Done(action, f"{pin}: tries set to {tries}", pin, tries)
        if action == "block":
            pin = _pin(card, args)
            card.block(pin)
            return Done(action, f"{pin}: blocked", pin, 0)
        if action == "set-pin":
            pin, value = _pin(card, args), args.get("value")
            if not isinstance(value, str):
                raise ControlError("give the new value")
            card.set_pin(pin, value)
            return Done(
                action,
                f"{pin}: re-set at the counter (new value, tries restored)",
                pin,
                card.pin_record(pin).tries_left,
            )
        if action == "quirk":
            name, on = args.get("name"), args.get("on")
            if not isinstance(name, str) or not isinstance(on, bool):
                raise ControlError("quirk needs a name and on: true / false")
            card.set_quirks(**{name: on})
            return Done(action, f"quirk {name} {'on' if on else 'off'}")
        if action == "profile":
            profile = str(args.get("profile"))
            card.set_profile(profile)
            return Done(action, f"profile switched to {profile} (at the counter)")
        if action == "atr-form":
            form = str(args.get("form"))
            card.set_atr_form(form)
            return Done(action, f"ATR form {form} (seen at the next insertion)")
        if action == "tear":
            card.faults.tear_after_decrement += 1
            return Done(action, "the next VERIFY with data loses power after the decrement")
    raise ControlError(f"unknown control {action!r}")


def _new_card(server: VpcdServer) -> Done:
    """Issue a fresh card (new keys, default PINs) of the same profile into the slot."""
    with server.exclusive() as card:
        if not isinstance(card, Card):
            raise ControlError(f"{type(card).__name__} has no new-card control")
        profile, form = card.state.profile, card.state.atr_form
        store = card.store
    state = new_state(profile=profile, atr_form=form)  # key generation: outside the lock
    if isinstance(store, SqliteStore):
        # Re-issued in place, in one transaction: every process sees it at its next power-on.
        SqliteStore.create(store.path, state, force=True).close()
    else:
        old = server.swap_card(Card(state))
        close = getattr(old, "close", None)
        if close is not None:
            close()
    replug(server)
    return Done("new-card", f"new {profile} card issued (default PINs) and inserted")
