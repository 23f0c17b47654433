"""Status words: one IntEnum, counter helpers only for 63Cx, names that never fail."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.grammar import SW, is_success, sw_name, tries_left, verify_failed


@pytest.mark.parametrize("x", range(16))
def test_63cx_carries_tries_left(x: int) -> None:
    sw = verify_failed(x)
    assert sw == 0x63C0 + x
    assert tries_left(sw) == x


@pytest.mark.parametrize(
    "sw", [0x9000, 0x6984, 0x6983, 0x6300, 0x63B3, 0x63D1, 0x6282, 0x6A82, 0x6C03, 0x0000]
)
def test_tries_left_only_for_63cx(sw: int) -> None:
    # 6984 is not "4 tries left": that misreading makes a healthy card look locked.
    assert tries_left(sw) is None


@pytest.mark.parametrize("tries", [-1, 16, 100])
def test_verify_failed_refuses_impossible_counts(tries: int) -> None:
    with pytest.raises(ValueError):
        verify_failed(tries)


@pytest.mark.parametrize(
    ("sw", "name"),
    [
        (0x9000, "9000 OK"),
        (0x6A82, "6A82 FILE_NOT_FOUND"),
        (0x6984, "6984 REFERENCE_DATA_NOT_USABLE"),
        (0x63C2, "63C2 VERIFY_FAILED(2 tries left)"),
        (0x63C0, "63C0 VERIFY_FAILED(0 tries left)"),
        (0x6C10, "6C10"),
        (0x1234, "1234"),
    ],
)
def test_sw_name(sw: int, name: str) -> None:
    assert sw_name(sw) == name


@given(st.integers(0, 0xFFFF))
def test_sw_name_never_fails_and_starts_with_the_hex(sw: int) -> None:
    assert sw_name(sw).startswith(f"{sw:04X}")


def test_enum_members_are_ints_with_iso_names() -> None:
    assert SW.OK == 0x9000 and isinstance(SW.OK, int)
    assert SW(0x6A82) is SW.FILE_NOT_FOUND
    assert len({int(m) for m in SW}) == len(SW), "no two names for one status word"


@pytest.mark.parametrize(
    ("sw", "ok"),
    [
        (0x9000, True),
        (0x6100, True),
        (0x61FF, True),
        (0x6282, False),
        (0x63C3, False),
        (0x9001, False),
        (0x6A82, False),
    ],
)
def test_is_success(sw: int, ok: bool) -> None:
    assert is_success(sw) is ok
