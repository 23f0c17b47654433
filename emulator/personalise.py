"""Personalisation: a new card state (holder, keys, PINs) and the counter's profile change."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from emulator import pins
from emulator.identity import (
    check_number_a,
    check_number_b,
    generate_holder,
    generate_pki,
    issue_signing,
    revoke_signing,
)
from emulator.profiles import ATRS, DEFAULT_ATR_FORM, FACE_AUTH, PROFILES, STANDARD
from emulator.protocol import PIN_ORDER, PINS_OF, Pin, Profile
from emulator.state import CardState, Holder, PinRecord, Pki, Quirks


def pin_values(overrides: Mapping[str, str] | None, profile: str) -> dict[str, bytes]:
    """The PIN values a new card gets, validated; raises ``ValueError`` with the rule broken."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(PIN_ORDER)
    if unknown:
        # check numbers are not chosen: they derive from the holder data printed on the card
        raise ValueError(f"unknown PIN name {sorted(unknown)[0]!r}; known: {', '.join(PIN_ORDER)}")
    names = _pin_names(profile)
    if profile == FACE_AUTH and {"auth", "sign"} & set(overrides):
        raise ValueError("a face-authentication card has no JPKI PIN or signing password")
    values = {}
    for name in names:
        raw = overrides.get(name, pins.DEFAULT_PINS[name]).encode("ascii", "replace")
        problem = pins.SPECS[name].violation(raw)
        if problem:
            raise ValueError(problem)
        values[name] = raw
    return values


def check_number_records(holder: Holder) -> dict[str, PinRecord]:
    """Salted-hash records of the four check numbers, from the data printed on the card;
    none for a holder without expiry date or security code (docs/card.md#check-numbers)."""
    if not (holder.expiry and holder.security_code):
        return {}
    a = check_number_a(holder).encode("ascii")
    b = check_number_b(holder).encode("ascii")
    values = {Pin.TEXT_A: a, Pin.TEXT_B: b, Pin.SURFACE_A: a, Pin.SURFACE_B: b}
    return {str(p): pins.new_record(pins.SPECS[p], v) for p, v in values.items()}


def _pin_names(profile: str) -> tuple[str, ...]:
    # [model] a face-authentication card keeps the Juki and input-helper PINs only.
    return PINS_OF[Profile(profile)]


def new_state(
    *,
    profile: str = STANDARD,
    pin_overrides: Mapping[str, str] | None = None,
    atr_form: str = DEFAULT_ATR_FORM,
    quirks: Quirks | None = None,
    holder: Holder | None = None,
    holder_seed: int | None = None,
    pki: Pki | None = None,
    fresh_keys: bool | None = None,
) -> CardState:
    """A freshly issued card. Pass *pki* to reuse keys and certificates (tests); else the card
    gets its own certificates over the published TEST keys, or over newly generated keys with
    *fresh_keys* (default: ``MYNA_HIL_FRESH_KEYS``; docs/card.md#test-keys).

    The holder is *holder*, else generated: reproducibly from *holder_seed*, else at random.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if atr_form not in ATRS:
        raise ValueError(f"unknown ATR form {atr_form!r}; known: {', '.join(ATRS)}")
    values = pin_values(pin_overrides, profile)
    holder = holder or generate_holder(seed=holder_seed)
    if pki is None:
        pki = generate_pki(
            with_signing=profile == STANDARD, birth_date=holder.birth_date, fresh_keys=fresh_keys
        )
    else:
        pki = copy.copy(pki)  # its fields are bytes: a new object is enough
        if profile == FACE_AUTH:
            revoke_signing(pki)
        elif pki.sign_key is None:
            issue_signing(pki, birth_date=holder.birth_date, fresh_keys=fresh_keys)
    # [model] the common AP's PIN starts with the Juki PIN's value: user interfaces present
    # them as one "個人番号カード用 PIN" although they are two references [card].
    values[str(Pin.COMMON)] = values["juki"]
    records = {n: pins.new_record(pins.SPECS[n], v) for n, v in values.items()}
    return CardState(
        profile=profile,
        atr_form=atr_form,
        holder=holder,
        pki=pki,
        pins={**records, **check_number_records(holder)},
        quirks=quirks or Quirks(),
    )


def apply_profile(
    state: CardState, profile: str, *, auth: str | None = None, sign: str | None = None
) -> None:
    """[model] The counter switches a card's profile, re-issuing or revoking the signing key.

    To a PIN card the holder chooses the two JPKI secrets (*auth*, *sign*); to a
    face-authentication card both are removed with the signing key and certificate.
    """
    if profile == FACE_AUTH:
        revoke_signing(state.pki)
        state.pins.pop("auth", None)
        state.pins.pop("sign", None)
    else:
        chosen = {k: v for k, v in (("auth", auth), ("sign", sign)) if v is not None}
        values = pin_values(chosen, STANDARD)
        if state.pki.sign_key is None:
            issue_signing(state.pki, birth_date=state.holder.birth_date)
        for name in ("auth", "sign"):
            if name in chosen or name not in state.pins:
                state.pins[name] = pins.new_record(pins.SPECS[name], values[name])
    state.profile = profile
