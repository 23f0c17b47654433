"""The card's file model: applications (DFs named by AID) and their elementary files.

Separate from command decoding: handlers ask this model what a FID or an SFI refers to and
what reading it requires. Short file identifiers are the FID's low five bits, which is how
the card's EFs ``0001``..``001C`` are addressed (``P2 = 80 | SFI``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from emulator.card import Card
    from emulator.grammar import CommandApdu
    from emulator.protocol import PinReference

#: A command handler: returns the whole response (data + SW) or raises ``SwError``.
Handler = Callable[["Card", "CommandApdu"], bytes]


#: A secret no card holds: an EF that names it is never readable ([model] content not public).
NOBODY = "nobody"


@dataclass(frozen=True, slots=True)
class BinaryEf:
    """A transparent EF. ``read_pins`` names the secrets any one of which, verified in this
    session, opens it for reading (text AP ``0001``: the PIN or check number A); empty: free.
    """

    fid: int
    content: bytes
    read_pins: frozenset[str] = frozenset()

    @classmethod
    def opened_by(cls, fid: int, content: bytes, *pins: str) -> BinaryEf:
        return cls(fid, content, frozenset(pins))


@dataclass(frozen=True, slots=True)
class PinEf:
    """An EF holding a PIN's reference data.

    ``pin`` names the record in the card state; ``None`` is a reference that is blocked for
    good (text AP ``0012``). ``disabled`` answers ``6984`` to everything ([model]: the auth PIN
    of a face-authentication card). ``change`` is the INS family that changes it.
    """

    fid: int
    pin: str | None
    disabled: bool = False
    #: "iso": 00 24 (CHANGE REFERENCE DATA); "jicsap": 80 32 (CHANGE KEY); "none": a check
    #: number, printed on the card, changed by no command.
    change: str = "iso"

    @classmethod
    def of(cls, ref: PinReference, *, disabled: bool = False) -> PinEf:
        """The EF of a row of :data:`emulator.protocol.PIN_REFERENCES`."""
        return cls(ref.ef, ref.pin, disabled=disabled, change=ref.change)


@dataclass(frozen=True, slots=True)
class KeyEf:
    """A private-key EF usable by COMPUTE DIGITAL SIGNATURE after ``pin`` is verified."""

    fid: int
    key: str  # "auth" | "sign"
    pin: str | None  # None: no PIN unlocks it ([model] face-auth card's auth key)


@dataclass(frozen=True, slots=True)
class AuthKeyEf:
    """A key EF that answers INTERNAL AUTHENTICATE with no credential (common AP ``0019``).

    ``sign`` signs a challenge (the application module holds the key)."""

    fid: int
    sign: Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class RecordEf:
    """A linear EF of records, read by READ RECORD (the common AP's card-info record)."""

    fid: int
    records: tuple[bytes, ...]


Ef = Union[BinaryEf, PinEf, KeyEf, RecordEf, AuthKeyEf]  # noqa: UP007 - used at runtime by isinstance


@dataclass(frozen=True)
class Application:
    name: str
    aid: bytes
    files: dict[int, Ef]
    #: Application-specific commands keyed by (CLA class, INS), e.g. JPKI's 80 2A.
    commands: dict[tuple[int, int], Handler] = field(default_factory=dict)

    def by_sfi(self, sfi: int) -> Ef | None:
        """EF with short file identifier *sfi* (1..30) in this application."""
        return self.files.get(sfi)
