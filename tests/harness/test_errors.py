"""The client error tree: typed by status word, named in str(), never carrying data."""

from __future__ import annotations

import pytest

from harness.errors import (
    ApduError,
    NoSuchFileError,
    PinBlockedError,
    SecurityStatusError,
    WrongLengthError,
    WrongPinError,
    error_for,
)


@pytest.mark.parametrize(
    ("sw", "cls"),
    [
        (0x63C2, WrongPinError),
        (0x63C0, WrongPinError),
        (0x6984, PinBlockedError),
        (0x6982, SecurityStatusError),
        (0x6A82, NoSuchFileError),
        (0x6700, WrongLengthError),
        (0x6D00, ApduError),
        (0x6123, ApduError),
    ],
)
def test_error_for_picks_the_typed_subclass(sw: int, cls: type[ApduError]) -> None:
    err = error_for(sw)
    assert type(err) is cls
    assert err.sw == sw


def test_wrong_pin_carries_tries_and_blocked() -> None:
    two, zero = error_for(0x63C2), error_for(0x63C0)
    assert isinstance(two, WrongPinError) and isinstance(zero, WrongPinError)
    assert (two.tries_left, two.blocked) == (2, False)
    assert (zero.tries_left, zero.blocked) == (0, True)


def test_str_names_the_status_word_and_command() -> None:
    assert str(error_for(0x6A82, command="SELECT EF 001B")) == (
        "SELECT EF 001B: 6A82 FILE_NOT_FOUND"
    )
    assert "2 tries left" in str(error_for(0x63C2))
    assert str(error_for(0x6F12)) == "6F12"  # an unknown SW never breaks construction


def test_no_data_in_message_or_repr() -> None:
    secret = b"1234"
    err = error_for(0x63C2, secret, "VERIFY JPKI auth")
    assert "1234" not in str(err) and "31323334" not in str(err).replace(" ", "")
    assert "1234" not in repr(err) and "3132" not in repr(err)
