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

from emulator.grammar.ids import JPKI, JUKI, SURFACE, TEXT


class Application(StrEnum):
    """The selectable applications, by the short name traces and reports use."""

    JPKI = "jpki"
    TEXT = "text"
    SURFACE = "surface"
    JUKI = "juki"
    COMMON = "common"

    @property
    def aid(self) -> bytes:
        return AIDS[self]


AIDS: Final[dict[Application, bytes]] = {
    Application.JPKI: JPKI.AID,
    Application.TEXT: TEXT.AID,
    Application.SURFACE: SURFACE.AID,
    Application.JUKI: JUKI.AID,
    Application.COMMON: JUKI.COMMON_AID,
}
APPLICATION_BY_AID: Final[dict[bytes, Application]] = {aid: app for app, aid in AIDS.items()}


class Pin(StrEnum):
    """The card's four secrets (docs/card.md#secrets)."""

    AUTH = "auth"  # JPKI user-authentication PIN
    SIGN = "sign"  # JPKI signing password
    JUKI = "juki"  # Juki (residence registry) PIN
    HELPER = "helper"  # card-info input-helper PIN


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


_AUTH = PinSpec(Pin.AUTH, "JPKI user-authentication PIN", 4, 4, "0-9", "digits", 3)
_SIGN = PinSpec(
    Pin.SIGN, "JPKI signing password", 6, 16, "A-Z0-9", "characters of A-Z and 0-9", 5
)
_JUKI = PinSpec(Pin.JUKI, "Juki (residence registry) PIN", 4, 4, "0-9", "digits", 3)
_HELPER = PinSpec(Pin.HELPER, "card-info input-helper PIN", 4, 4, "0-9", "digits", 3)

#: Keyed by :class:`~emulator.protocol.Pin`; plain names work too (``Pin`` is a ``StrEnum``).
SPECS: Final[dict[str, PinSpec]] = {s.name: s for s in (_AUTH, _SIGN, _JUKI, _HELPER)}

#: Display and iteration order everywhere (CLI tables, JSON, scenario checks).
PIN_ORDER: Final[tuple[Pin, ...]] = (Pin.AUTH, Pin.SIGN, Pin.JUKI, Pin.HELPER)
#: The JPKI secrets: the ones the smartphone-and-kiosk route can re-set.
JPKI_PINS: Final[tuple[Pin, ...]] = (Pin.AUTH, Pin.SIGN)


@dataclass(frozen=True, slots=True)
class PinReference:
    """Where a secret is verified: an application and the EF holding its reference data."""

    pin: Pin
    app: Application
    ef: int
    #: The instruction family that changes it: ISO CHANGE REFERENCE DATA or JICSAP CHANGE KEY.
    change: Literal["iso", "jicsap"] = "iso"

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
#: one clients use; the Juki PIN is also reachable from the common AP [client][model].
PIN_REFERENCES: Final[tuple[PinReference, ...]] = (
    PinReference(Pin.AUTH, Application.JPKI, JPKI.EF_AUTH_PIN),
    PinReference(Pin.SIGN, Application.JPKI, JPKI.EF_SIGN_PIN),
    PinReference(Pin.JUKI, Application.JUKI, JUKI.EF_PIN, change="jicsap"),
    PinReference(Pin.HELPER, Application.TEXT, TEXT.EF_PIN),
    PinReference(Pin.JUKI, Application.COMMON, JUKI.EF_PIN, change="jicsap"),
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


#: The secrets a card of each profile holds ([model] for face-authentication cards).
PINS_OF: Final[dict[Profile, tuple[Pin, ...]]] = {
    Profile.STANDARD: PIN_ORDER,
    Profile.FACE_AUTH: (Pin.JUKI, Pin.HELPER),
}

__all__ = [
    "AIDS",
    "APPLICATION_BY_AID",
    "HOME",
    "JPKI_PINS",
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
