"""Per-trace fingerprints of secrets: equality without the values.

A redacted trace cannot show PINs, yet the forensics must tell "the same value sent twice",
"this is the auth PIN's value tried on the Juki PIN" and "the correct password, lower-cased".
So every secret-bearing command is recorded with a fingerprint

    fp(v) = HMAC-SHA-256(K, v)[:8]      (hex)

under a key ``K`` drawn at random for each trace and **never written anywhere**: once the
run ends nobody can recompute a fingerprint, so a 4-digit PIN cannot be brute-forced from
the trace (10,000 guesses need ``K``). Within the trace, equal fingerprints mean equal
values (64 bits: collisions are negligible at a trace's size).

To recognise app-side transformations the recorder also stores the fingerprints of a few
*normalisations* of the value that differ from it: ``case`` (upper-cased), ``width`` (NFKC:
full-width digits and letters to ASCII), ``space`` (surrounding whitespace removed) and
``norm`` (all three). If a failed attempt's ``case`` fingerprint equals the fingerprint of a
value the card accepted, the app lower-cased a correct password. Fingerprints from different
traces are unrelated by construction.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Callable

FP_BYTES = 8
DESCRIPTION = "HMAC-SHA-256/64 under a random per-trace key that is never stored"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


#: The normalisations an app might have failed to apply (or applied wrongly), by name.
NORMALISATIONS: dict[str, Callable[[str], str]] = {
    "case": str.upper,
    "width": lambda s: unicodedata.normalize("NFKC", s),
    "space": str.strip,
    "norm": lambda s: unicodedata.normalize("NFKC", s).strip().upper(),
}


class Fingerprinter:
    """Fingerprints under one random key; keep one per trace and let it die with the run."""

    def __init__(self, key: bytes | None = None) -> None:
        self.__key = key if key is not None else os.urandom(32)

    def __repr__(self) -> str:
        return "Fingerprinter(<key withheld>)"

    def fp(self, value: bytes) -> str:
        return hmac.new(self.__key, value, hashlib.sha256).digest()[:FP_BYTES].hex()

    def variants(self, value: bytes) -> dict[str, str]:
        """Fingerprints of the normalised forms of *value* that differ from it."""
        out: dict[str, str] = {}
        text = _text(value)
        for name, fn in NORMALISATIONS.items():
            changed = fn(text).encode("utf-8")
            if changed != value:
                out[name] = self.fp(changed)
        return out
