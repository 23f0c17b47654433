"""Finding a secret value in a text: every form a leak takes, none that chance makes.

A 4-digit PIN occurs by chance inside any long run of digits or hex digits -- a time
stamp's microseconds, a ``perf_counter`` value, a fingerprint, a certificate, a random My
Number -- about once in 10,000 windows, so a test that looks for ``1234`` anywhere in a
trace can fail with nothing leaked (by estimate, up to once in a few hundred runs per
test). A leaked value stands on its
own (``pin=1234``, ``"1234"``) or is ASCII hex (``31323334``, eight hex digits: one chance
in 4·10⁹ per window). So:

- a value made only of hex digits is found as a word: not inside a longer run of letters
  and digits, and not after a decimal point (a fraction's digits);
- any other value (``ABC123!``, ``QZXW7319PLMK``) anywhere;
- its ASCII hex, plain and byte-spaced, in either case, anywhere.
"""

from __future__ import annotations

import re

__all__ = ["leaked_forms"]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _patterns(value: str) -> dict[str, re.Pattern[str]]:
    raw = value.encode()
    found = {
        "ASCII hex": raw.hex(),
        "ASCII HEX": raw.hex().upper(),
        "spaced ASCII hex": raw.hex(" "),
        "spaced ASCII HEX": raw.hex(" ").upper(),
    }
    patterns = {form: re.compile(re.escape(text)) for form, text in found.items()}
    if set(value) <= _HEX_DIGITS:
        word = rf"(?<![0-9A-Za-z.]){re.escape(value)}(?![0-9A-Za-z])"
        patterns["the value as a word"] = re.compile(word)
    else:
        patterns["the value"] = re.compile(re.escape(value))
    return patterns


def leaked_forms(text: str, *values: str) -> list[str]:
    """Which forms of *values* occur in *text* (empty: nothing leaked): "the value as a
    word of secret 2", ... -- never the value itself, which a failure message would show."""
    if not values or any(not v for v in values):
        raise ValueError("no secret, or an empty one, to look for")
    return [
        f"{form} of secret {n}"
        for n, value in enumerate(values, 1)
        for form, pattern in _patterns(value).items()
        if pattern.search(text)
    ]
