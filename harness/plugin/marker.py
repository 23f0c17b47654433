"""The ``myna_card`` marker: what a test asks of its card, checked before the card is made.

``@pytest.mark.myna_card("face-auth", pins={"juki": "1111"}, tries={"helper": 1},
quirks={"status_9000_after_verify": True}, atr="contactless", check_numbers=False)``

Every key, PIN name, quirk, profile and ATR form is checked against the card's tables when
the test is collected (:func:`card_options` raises :class:`MarkerError` with the known names),
so a typo stops the run instead of configuring nothing. Values (a PIN breaking its format,
tries out of range) are checked by the card when the test's card is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.profiles import DEFAULT_ATR_FORM
from emulator.protocol import CHECK_NUMBERS
from harness.controls import (
    ATR_FORMS,
    PROFILE_NAMES,
    UnknownNameError,
    check_name,
    check_pin,
    check_quirk,
)

MARKER = "myna_card"
#: The marker's keywords, in the order the help lists them.
MARKER_KEYS: tuple[str, ...] = ("profile", "pins", "tries", "quirks", "atr", "check_numbers")
MARKER_HELP = (
    "myna_card(profile='standard', *, pins=None, tries=None, quirks=None, atr='contact', "
    "check_numbers=True): configure the myna_card / myna_vpcd_card card. pins: "
    "{name: value}; tries: {name: tries left}; quirks: {name: bool}; atr: an ATR form; "
    "check_numbers: False for a card without them, or {text-a/text-b/surface-a/surface-b: "
    "value}"
)


class MarkerError(ValueError):
    """A ``myna_card`` marker that cannot be honoured (one line, names the known values)."""


@dataclass(frozen=True)
class CardOptions:
    """A test's card, as its marker asks for it (the defaults: a fresh standard card)."""

    profile: str = "standard"
    pins: Mapping[str, str] = field(default_factory=dict)
    tries: Mapping[str, int] = field(default_factory=dict)
    quirks: Mapping[str, bool] = field(default_factory=dict)
    atr: str = DEFAULT_ATR_FORM
    #: False: a card issued without check numbers; a mapping: their values (by PIN name).
    check_numbers: bool | Mapping[str, str] = True

    @property
    def has_check_numbers(self) -> bool:
        return self.check_numbers is not False


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MarkerError(f"{key}= takes a dict, not {type(value).__name__}")
    return value


def card_options(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> CardOptions:
    """The options of a ``myna_card(*args, **kwargs)`` marker; :class:`MarkerError` if any
    name is unknown or a value has the wrong type."""
    try:
        return _card_options(args, kwargs)
    except UnknownNameError as exc:
        raise MarkerError(str(exc)) from None


def _card_options(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> CardOptions:
    for key in kwargs:
        check_name("myna_card marker key", key, MARKER_KEYS)
    if len(args) > 1:
        raise MarkerError(f"takes one positional argument (the profile), got {len(args)}")
    if args and "profile" in kwargs:
        raise MarkerError("the profile is given twice (positionally and as profile=)")
    profile = check_name(
        "profile", args[0] if args else kwargs.get("profile", "standard"), PROFILE_NAMES
    )
    pins = dict(_mapping("pins", kwargs.get("pins")))
    tries = dict(_mapping("tries", kwargs.get("tries")))
    quirks = dict(_mapping("quirks", kwargs.get("quirks")))
    for name, value in pins.items():
        check_pin(name)
        if not isinstance(value, str):
            raise MarkerError(f"pins[{name!r}] must be a str, not {type(value).__name__}")
    for name, value in tries.items():
        check_pin(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MarkerError(f"tries[{name!r}] must be an int, not {type(value).__name__}")
    for name, value in quirks.items():
        check_quirk(name)
        if not isinstance(value, bool):
            raise MarkerError(f"quirks[{name!r}] must be True or False")
    atr = check_name("ATR form", kwargs.get("atr", DEFAULT_ATR_FORM), ATR_FORMS)
    check: bool | Mapping[str, str] = kwargs.get("check_numbers", True)
    if not isinstance(check, bool):
        check = dict(_mapping("check_numbers", check))
        for name, value in check.items():
            check_name("check number", name, CHECK_NUMBERS)
            if not isinstance(value, str):
                raise MarkerError(f"check_numbers[{name!r}] must be a str")
    wanted = {*pins, *tries} & set(CHECK_NUMBERS)
    if check is False and wanted:
        raise MarkerError(
            f"check_numbers=False, yet {', '.join(sorted(wanted))} configured: a card "
            "without check numbers has none"
        )
    return CardOptions(profile, pins, tries, quirks, atr, check)
