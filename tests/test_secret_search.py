"""The tests' search for leaked secrets (tests/support/secrets.py) finds every form a leak
takes and none that chance makes inside time stamps, fingerprints or random numbers."""

from __future__ import annotations

import random

import pytest

from tests.support.secrets import leaked_forms


@pytest.mark.parametrize(
    "text",
    [
        "pin=1234",
        '{"pin": "1234"}',
        "VERIFY 1234 refused",
        "the PIN 1234.",
        "00200080 04 31323334",
        "0020008004 31 32 33 34",
        "...3132333463C2",
        "31 32 33 34",
    ],
)
def test_a_leaked_pin_is_found(text: str) -> None:
    assert leaked_forms(text, "1234")


@pytest.mark.parametrize(
    "text", ["sign=NEWPASS9", "xxNEWPASS9yy", "4E45575041535339", "4e 45 57 50 41 53 53 39"]
)
def test_a_leaked_password_is_found_anywhere(text: str) -> None:
    # Not made of hex digits only, so chance cannot put it in a hex dump: found anywhere.
    assert leaked_forms(text, "NEWPASS9")


@pytest.mark.parametrize(("text", "found"), [("sign=ABC123", True), ("FFABC123FF", False)])
def test_a_password_of_hex_digits_is_found_as_a_word(text: str, found: bool) -> None:
    assert bool(leaked_forms(text, "ABC123")) is found


@pytest.mark.parametrize(
    "text",
    [
        '"time": "2026-12-01T17:52:24.123456+00:00"',
        '"t": 0.001234',
        '"fp": "ab1234cd9e8f7a6b"',
        '"my_number": "791412346786"',
        "(22873.249123412, 1796147554012344636)",
        "x1234",
        "1234a",
    ],
)
def test_chance_digits_are_not_a_leak(text: str) -> None:
    assert leaked_forms(text, "1234") == []


def test_random_digits_and_hex_give_no_false_alarm() -> None:
    # A bare substring search finds "1234" in about 1 of 10,000 windows of random digits:
    # in this text, tens of times.
    rng = random.Random(15)
    digits = " ".join(f"{rng.random():.12f} {rng.getrandbits(160):x}" for _ in range(20_000))
    assert "1234" in digits
    assert leaked_forms(digits, "1234") == []


def test_the_forms_named_never_show_the_value() -> None:
    found = leaked_forms("pin=8642 38363432", "8642")
    assert found and not any("8642" in f or "38363432" in f for f in found)
    with pytest.raises(ValueError):
        leaked_forms("text", "")
