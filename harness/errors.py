"""The client-side error tree: one :class:`ApduError` per status word family.

Errors are built from the status word and the response data only, so no PIN, password or
other command data can ever reach a message, a log line or a ``repr``.
"""

from __future__ import annotations

from emulator.grammar import SW, sw_name, tries_left

__all__ = [
    "ApduError",
    "AuthenticationFailedError",
    "ConditionsNotSatisfiedError",
    "IncorrectDataError",
    "NoSuchFileError",
    "PinBlockedError",
    "ProtocolError",
    "SecurityStatusError",
    "WrongLengthError",
    "WrongPinError",
    "error_for",
]


class ApduError(Exception):
    """The card answered a status word other than success.

    ``str()`` names the SW (``"6A82 FILE_NOT_FOUND"``) and, when given, the command that
    got it (``"SELECT EF 001B"``). Unknown SWs stay plain ints.
    """

    def __init__(self, sw: int, data: bytes = b"", command: str = "") -> None:
        self.sw = sw
        self.data = data
        self.command = command
        super().__init__(sw)

    def __str__(self) -> str:
        where = f"{self.command}: " if self.command else ""
        return f"{where}{sw_name(self.sw)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sw=0x{self.sw:04X}, command={self.command!r})"


class WrongPinError(ApduError):
    """VERIFY failed (``63Cx``): the counter was spent and ``tries_left`` remain."""

    @property
    def tries_left(self) -> int:
        n = tries_left(self.sw)
        assert n is not None
        return n

    @property
    def blocked(self) -> bool:
        """The attempt that spent the last try (``63C0``)."""
        return self.tries_left == 0


class PinBlockedError(ApduError):
    """``6984``: the reference data is blocked or unusable (no try was spent)."""


class SecurityStatusError(ApduError):
    """``6982``: the PIN that guards this file or key is not verified in this session."""


class NoSuchFileError(ApduError):
    """``6A82``: no such application or file (e.g. a face-auth card's signing EFs)."""


class WrongLengthError(ApduError):
    """``6700``: wrong length (for a PIN: outside its format, no try spent [model])."""


class IncorrectDataError(ApduError):
    """``6A80``: the data breaks a rule (e.g. a new PIN of the wrong format) [model]."""


class ConditionsNotSatisfiedError(ApduError):
    """``6985``: conditions of use not satisfied (e.g. no challenge before authentication)."""


class AuthenticationFailedError(ApduError):
    """``6300``: the issuer cryptogram was wrong."""


class ProtocolError(ApduError):
    """The answer breaks the protocol whatever its SW says (``9000`` with no data to a READ
    BINARY that needs more, a file larger than READ BINARY can address): a faulty or
    hostile card. ``str()`` says what was wrong; the data is never shown."""

    def __init__(self, command: str, problem: str, sw: int = SW.OK) -> None:
        super().__init__(sw, b"", command)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.command}: protocol error: {self.problem} (SW {self.sw:04X})"


_BY_SW: dict[int, type[ApduError]] = {
    SW.REFERENCE_DATA_NOT_USABLE: PinBlockedError,
    SW.AUTHENTICATION_METHOD_BLOCKED: PinBlockedError,
    SW.SECURITY_STATUS_NOT_SATISFIED: SecurityStatusError,
    SW.FILE_NOT_FOUND: NoSuchFileError,
    SW.WRONG_LENGTH: WrongLengthError,
    SW.INCORRECT_DATA: IncorrectDataError,
    SW.CONDITIONS_NOT_SATISFIED: ConditionsNotSatisfiedError,
    SW.AUTHENTICATION_FAILED: AuthenticationFailedError,
}


def error_for(sw: int, data: bytes = b"", command: str = "") -> ApduError:
    """The most specific :class:`ApduError` for *sw* (never fails on an unknown SW)."""
    if tries_left(sw) is not None:
        return WrongPinError(sw, data, command)
    return _BY_SW.get(sw, ApduError)(sw, data, command)
