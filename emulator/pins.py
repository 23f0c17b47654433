"""The four secrets of the card: their formats, retry limits and salted-hash reference data.

PIN values never leave this module except as a yes/no comparison: records hold a salted
PBKDF2 hash, comparison is constant-time, and nothing here logs or formats a value.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from emulator.protocol import SPECS as SPECS
from emulator.protocol import Pin
from emulator.protocol import PinSpec as PinSpec
from emulator.state import PinChange, PinRecord

#: PBKDF2 rounds. Low on purpose: no stretching protects a 4-digit PIN (10,000 candidates),
#: and a VERIFY must cost about one durable write, not a key derivation. The salted hash keeps
#: values out of state files and memory dumps; the state file itself must stay private (0600).
PBKDF2_ITERATIONS = 16


#: The four formats and retry limits live with the card's other facts (state validation needs
#: them, and the state sits below this module); re-exported here, where the values are checked.
AUTH, SIGN, JUKI, HELPER = (SPECS[p] for p in (Pin.AUTH, Pin.SIGN, Pin.JUKI, Pin.HELPER))

#: Values a freshly initialised test card gets (documented in the README).
DEFAULT_PINS: dict[str, str] = {
    Pin.AUTH: "1234",
    Pin.SIGN: "ABC123",
    Pin.JUKI: "3456",
    Pin.HELPER: "2345",
}


def _digest(value: bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", value, salt, iterations)


def new_record(spec: PinSpec, value: bytes) -> PinRecord:
    """Reference data for *value* with a fresh salt and a full counter."""
    salt = os.urandom(16)
    return PinRecord(
        salt=salt,
        digest=_digest(value, salt, PBKDF2_ITERATIONS),
        iterations=PBKDF2_ITERATIONS,
        tries_left=spec.max_tries,
        max_tries=spec.max_tries,
    )


def set_value(record: PinRecord, value: bytes) -> None:
    """Replace the value (new salt) and restore the counter: one change of reference data."""
    record.salt = os.urandom(16)
    record.iterations = PBKDF2_ITERATIONS
    record.digest = _digest(value, record.salt, record.iterations)
    record.tries_left = record.max_tries


# --- changes of a record, each applied by the store inside one transaction ----------------
#
# A change may raise to abort (nothing is written). They work on the record as stored at that
# moment, never on a copy some process loaded earlier.


def spend_try(blocked: Exception) -> PinChange:
    """Decrement the counter, or raise *blocked* if there is no try left."""

    def change(record: PinRecord) -> None:
        if record.blocked:
            raise blocked
        record.tries_left -= 1

    return change


def restore_tries(digest: bytes, changed: Exception) -> PinChange:
    """Full counter after a correct value; *changed* if the value was re-set meanwhile."""

    def change(record: PinRecord) -> None:
        if record.digest != digest:
            raise changed
        record.tries_left = record.max_tries

    return change


def new_value(value: bytes) -> PinChange:
    return lambda record: set_value(record, value)


def set_tries(tries: int) -> PinChange:
    def change(record: PinRecord) -> None:
        record.tries_left = tries

    return change


def matches(record: PinRecord, value: bytes) -> bool:
    """Constant-time comparison of *value* with the reference data."""
    return hmac.compare_digest(_digest(value, record.salt, record.iterations), record.digest)
