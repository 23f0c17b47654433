"""The card's facts in one place: its applications, its secrets and where each is referenced.

The card (``emulator/apps``), the client sessions, the guard, the trace decoder and the
forensics all read these tables, so a new secret or a new reference to one is one row here.
Identifiers (AIDs, EF ids) come from :mod:`emulator.grammar.ids`; the format and retry limit
of each secret is in :data:`SPECS` (the state validates against it, so it sits here, below
the state; :mod:`emulator.pins` checks values with it). Reference:
docs/card.md#applications, #secrets.

The enums are ``StrEnum``: ``Pin.AUTH == "auth"``, so the names in state files, JSON output,
command lines and traces are the enum values themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from emulator.grammar.ids import ISD, JPKI, JUKI, SURFACE, TEXT


class Application(StrEnum):
    """The selectable applications, by the short name traces and reports use."""

    JPKI = "jpki"
    TEXT = "text"
    SURFACE = "surface"
    JUKI = "juki"
    COMMON = "common"
    ISD = "isd"  # the issuer security domain: selectable, nothing in it [card]

    @property
    def aid(self) -> bytes:
        return AIDS[self]


AIDS: Final[dict[Application, bytes]] = {
    Application.JPKI: JPKI.AID,
    Application.TEXT: TEXT.AID,
    Application.SURFACE: SURFACE.AID,
    Application.JUKI: JUKI.AID,
    Application.COMMON: JUKI.COMMON_AID,
    Application.ISD: ISD.AID,
}
APPLICATION_BY_AID: Final[dict[bytes, Application]] = {aid: app for app, aid in AIDS.items()}


class Pin(StrEnum):
    """The card's secrets (docs/card.md#secrets): four PINs the holder chooses, and four
    check-number references whose values are printed on the card (docs/card.md#check-numbers).
    """

    AUTH = "auth"  # JPKI user-authentication PIN
    SIGN = "sign"  # JPKI signing password
    JUKI = "juki"  # Juki (residence registry) PIN
    HELPER = "helper"  # card-info input-helper PIN
    COMMON = "common"  # the common AP's own 4-digit PIN (001C), separate from the Juki PIN
    TEXT_A = "text-a"  # text AP check number A (照合番号A: the My Number)
    TEXT_B = "text-b"  # text AP check number B (照合番号B: birth date + expiry year + code)
    SURFACE_A = "surface-a"  # surface AP check number A
    SURFACE_B = "surface-b"  # surface AP check number B


@dataclass(frozen=True, slots=True)
class PinSpec:
    """Format and retry limit of one secret (docs/card.md#secrets)."""

    name: Pin
    label: str
    min_len: int
    max_len: int
    charset: str  # regular-expression character class
    charset_text: str
    max_tries: int
    #: The name reports and tables show (``trace explain``, ``myna-hil status``, the panel):
    #: one per secret, used everywhere a secret is named for a reader of the output. The
    #: identifier (command lines, JSON, traces, the plugin) is :attr:`name`.
    short: str = ""

    def length_ok(self, value: bytes) -> bool:
        return self.min_len <= len(value) <= self.max_len

    def violation(self, value: bytes) -> str | None:
        """The rule *value* breaks, or ``None`` if it is a valid value for this secret."""
        size = (
            f"{self.min_len}" if self.min_len == self.max_len else f"{self.min_len}-{self.max_len}"
        )
        rule = f"the {self.label} must be {size} {self.charset_text}"
        if not self.length_ok(value):
            return f"{rule} (got {len(value)} characters)"
        if not re.fullmatch(rb"[" + self.charset.encode() + rb"]+", value):
            return f"{rule} (found another character)"
        return None


_AUTH = PinSpec(Pin.AUTH, "JPKI user-authentication PIN", 4, 4, "0-9", "digits", 3, "JPKI auth PIN")
_SIGN = PinSpec(
    Pin.SIGN,
    "JPKI signing password",
    6,
    16,
    "A-Z0-9",
    "characters of A-Z and 0-9",
    5,
    "JPKI signing password",
)
_JUKI = PinSpec(Pin.JUKI, "Juki (residence registry) PIN", 4, 4, "0-9", "digits", 3, "Juki PIN")
_HELPER = PinSpec(
    Pin.HELPER, "card-info input-helper PIN", 4, 4, "0-9", "digits", 3, "input-helper PIN"
)
#: 4 digits [card]; the retry limit is not public: [model] 3, as the Juki PIN beside it.
_COMMON = PinSpec(Pin.COMMON, "common-AP PIN", 4, 4, "0-9", "digits", 3, "common-AP PIN")
#: Check number A is the 12-digit My Number; B is 14 digits: birth date YYMMDD in the
#: Japanese era year, the expiry year YYYY and the 4-digit security code printed on the card
#: [card]. Their retry limit is not public: [model] 10 tries each, one counter per reference.
CHECK_NUMBER_TRIES: Final = 10
_CHECK = {
    Pin.TEXT_A: ("text-AP check number A", 12),
    Pin.TEXT_B: ("text-AP check number B", 14),
    Pin.SURFACE_A: ("surface-AP check number A", 12),
    Pin.SURFACE_B: ("surface-AP check number B", 14),
}

#: Keyed by :class:`~emulator.protocol.Pin`; plain names work too (``Pin`` is a ``StrEnum``).
SPECS: Final[dict[str, PinSpec]] = {
    s.name: s
    for s in (
        _AUTH,
        _SIGN,
        _JUKI,
        _HELPER,
        _COMMON,
        *(
            PinSpec(p, label, n, n, "0-9", "digits", CHECK_NUMBER_TRIES, label)
            for p, (label, n) in _CHECK.items()
        ),
    )
}

#: Display and iteration order everywhere (CLI tables, JSON, scenario checks): the four PINs.
PIN_ORDER: Final[tuple[Pin, ...]] = (Pin.AUTH, Pin.SIGN, Pin.JUKI, Pin.HELPER)
#: Secrets a card may lack, all or nothing each: cards issued before this project modelled
#: them load without (docs/card.md#check-numbers, #juki-and-common-ap).
OPTIONAL_PINS: Final[tuple[Pin, ...]] = (Pin.COMMON,)
#: The check-number references, in display order. Their values derive from holder data; a
#: card issued before they were modelled has none (docs/card.md#check-numbers).
CHECK_NUMBERS: Final[tuple[Pin, ...]] = (Pin.TEXT_A, Pin.TEXT_B, Pin.SURFACE_A, Pin.SURFACE_B)
#: The JPKI secrets: the ones the smartphone-and-kiosk route can re-set.
JPKI_PINS: Final[tuple[Pin, ...]] = (Pin.AUTH, Pin.SIGN)


@dataclass(frozen=True, slots=True)
class PinReference:
    """Where a secret is verified: an application and the EF holding its reference data."""

    pin: Pin
    app: Application
    ef: int
    #: The instruction family that changes it: ISO CHANGE REFERENCE DATA, JICSAP CHANGE KEY,
    #: or none (a check number is printed on the card, not chosen: [model] 6986).
    change: Literal["iso", "jicsap", "none"] = "iso"

    @property
    def sfi(self) -> int:
        return self.ef & 0x1F

    @property
    def p2(self) -> int:
        """P2 of VERIFY / CHANGE naming this reference by short file identifier."""
        return 0x80 | self.sfi

    @property
    def aid(self) -> bytes:
        return AIDS[self.app]


#: Every reference to a secret on the card. The first row of each secret is its home, the
#: one clients use. The common AP's 001C is its own reference with its own counter, not the
#: Juki PIN again: a client written against a real card (soltia48/myna-card, src/ap/common.rs)
#: records that the two must be verified and changed separately [card].
PIN_REFERENCES: Final[tuple[PinReference, ...]] = (
    PinReference(Pin.AUTH, Application.JPKI, JPKI.EF_AUTH_PIN),
    PinReference(Pin.SIGN, Application.JPKI, JPKI.EF_SIGN_PIN),
    PinReference(Pin.JUKI, Application.JUKI, JUKI.EF_PIN, change="jicsap"),
    PinReference(Pin.HELPER, Application.TEXT, TEXT.EF_PIN),
    PinReference(Pin.COMMON, Application.COMMON, JUKI.EF_PIN, change="jicsap"),
    # Check numbers [card]: text AP 0014 (A) / 0015 (B), surface AP 0013 (A) / 0012 (B).
    PinReference(Pin.TEXT_A, Application.TEXT, TEXT.EF_CHECK_A, change="none"),
    PinReference(Pin.TEXT_B, Application.TEXT, TEXT.EF_CHECK_B, change="none"),
    PinReference(Pin.SURFACE_A, Application.SURFACE, SURFACE.EF_CHECK_A, change="none"),
    PinReference(Pin.SURFACE_B, Application.SURFACE, SURFACE.EF_CHECK_B, change="none"),
)

#: Each secret's home reference.
HOME: Final[dict[Pin, PinReference]] = {}
for _ref in PIN_REFERENCES:
    HOME.setdefault(_ref.pin, _ref)
del _ref


def references_in(app: Application) -> tuple[PinReference, ...]:
    """The secrets an application holds references to, in table order."""
    return tuple(r for r in PIN_REFERENCES if r.app is app)


def pin_at(app: Application | None, ef: int) -> Pin | None:
    """The secret behind EF *ef* of *app*, or ``None``."""
    return next((r.pin for r in PIN_REFERENCES if r.app is app and r.ef == ef), None)


class Profile(StrEnum):
    """A PIN card, or a face-authentication card (no JPKI PIN or signing password)."""

    STANDARD = "standard"
    FACE_AUTH = "face-auth"


#: The PINs a card of each profile holds ([model] for face-authentication cards). Both
#: profiles may also hold :data:`CHECK_NUMBERS` (all four or none).
PINS_OF: Final[dict[Profile, tuple[Pin, ...]]] = {
    Profile.STANDARD: PIN_ORDER,
    Profile.FACE_AUTH: (Pin.JUKI, Pin.HELPER),
}

__all__ = [
    "AIDS",
    "APPLICATION_BY_AID",
    "CHECK_NUMBERS",
    "CHECK_NUMBER_TRIES",
    "HOME",
    "JPKI_PINS",
    "OPTIONAL_PINS",
    "PINS_OF",
    "PIN_ORDER",
    "PIN_REFERENCES",
    "SPECS",
    "Application",
    "Pin",
    "PinReference",
    "PinSpec",
    "Profile",
    "pin_at",
    "references_in",
]
