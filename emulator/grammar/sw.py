"""ISO 7816-4 status words, shared by the card and the harness.

One ``IntEnum`` with ISO names. Counter-carrying words (``63Cx``) are represented by their
``x = 0`` member plus the helpers :func:`verify_failed` and :func:`tries_left`; an SW the
enum does not know stays a plain ``int`` everywhere (see :func:`sw_name`).
"""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """Status words the My Number Card (and this emulator) answer."""

    OK = 0x9000
    END_OF_FILE = 0x6282  # end of file reached before reading Le bytes
    AUTHENTICATION_FAILED = 0x6300
    VERIFY_FAILED = 0x63C0  # 63Cx: verification failed, x tries left
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    CHAINING_NOT_SUPPORTED = 0x6884
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED_NO_EF = 0x6986
    COMMAND_INCOMPATIBLE_WITH_FILE = 0x6981  # READ RECORD of a transparent EF
    #: Proprietary: a secure-messaging class outside a secure-messaging session [card].
    SECURE_MESSAGING_NO_SESSION = 0x69FC
    INCORRECT_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1P2 = 0x6A86
    REFERENCE_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


def verify_failed(tries: int) -> int:
    """The ``63Cx`` word for *tries* tries left (0..15)."""
    if not 0 <= tries <= 0xF:
        raise ValueError(f"tries out of range for 63Cx: {tries}")
    return SW.VERIFY_FAILED | tries


def tries_left(sw: int) -> int | None:
    """Tries left announced by a ``63Cx`` word, or ``None`` for any other SW.

    Only ``63Cx`` carries a counter. Reading ``SW2 & 0x0F`` from other words (``6984`` as
    "4 tries") is one of the misreadings behind phantom lockouts.
    """
    if sw & 0xFFF0 == SW.VERIFY_FAILED:
        return sw & 0x0F
    return None


def sw_name(sw: int) -> str:
    """``"6A82 FILE_NOT_FOUND"``-style label; unknown words keep their hex."""
    n = tries_left(sw)
    if n is not None:
        return f"{sw:04X} VERIFY_FAILED({n} tries left)"
    try:
        return f"{sw:04X} {SW(sw).name}"
    except ValueError:
        return f"{sw:04X}"


def is_success(sw: int) -> bool:
    """``9000`` and the ``61xx`` "more data" family count as success."""
    return sw == SW.OK or sw >> 8 == 0x61
