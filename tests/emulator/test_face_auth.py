"""The face-authentication card ([model] APDU behaviour).

Reference: docs/card.md#face-authentication-profile.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Link
from tests.emulator.apdus import JPKI, JUKI, OK, TEXT, open_ef, read, select_app, select_ef, verify


@pytest.fixture
def face(make_link: Callable[..., Link]) -> Link:
    return make_link(profile="face-auth")


@pytest.mark.parametrize("fid", [0x0001, 0x001A, 0x001B])
def test_signing_files_are_absent(face: Link, fid: int) -> None:
    assert face.sw(select_app(JPKI)) == OK
    assert face.sw(select_ef(fid)) == 0x6A82


def test_certificate_availability_is_00_8f_00(face: Link) -> None:
    open_ef(face, JPKI, 0x0008)
    assert face.send(read(0, 3)).hex().upper() == "008F009000"


@pytest.mark.parametrize("fid", [0x000A, 0x000B, 0x0002, 0x0006])
def test_free_files_remain(face: Link, fid: int) -> None:
    open_ef(face, JPKI, fid)
    assert face.sw(read(0, 4)) == OK


@pytest.mark.parametrize("apdu", [verify("1234", 0x98), verify(p2=0x98), verify("1", 0x98)])
def test_auth_pin_answers_6984_and_spends_nothing(face: Link, apdu: str) -> None:
    assert face.sw(select_app(JPKI)) == OK
    assert face.sw(apdu) == 0x6984
    assert face.sw(apdu) == 0x6984
    assert "auth" not in face.card.state.pins
    assert face.sw(verify("ABC123", 0x9B)) in (0x6A82, 0x6A88)  # no signing password at all


def test_auth_key_is_not_usable_by_pin(face: Link) -> None:
    assert face.sw(select_app(JPKI)) == OK
    assert face.sw("802A0397014100") == 0x6982


@pytest.mark.parametrize(
    ("aid", "p2", "value", "name"), [(JUKI, 0x9C, "3456", "juki"), (TEXT, 0x91, "2345", "helper")]
)
def test_other_pins_work_as_on_a_pin_card(
    face: Link, aid: str, p2: int, value: str, name: str
) -> None:
    assert face.sw(select_app(aid)) == OK
    assert face.sw(verify("0000", p2)) == 0x63C2
    assert face.sw(verify(value, p2)) == OK
    assert face.card.state.pins[name].tries_left == 3
