"""The vendor app in ``jpki_login_app`` runs unchanged in-process (``myna_pyscard_reader``:
no pcscd) and through pcscd + vpcd, and gets the same answers from both."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from emulator.vpcd import VpcdServer, reader_name, slot_port
from harness.controls import InProcessCard
from harness.pyscard_reader import InProcessReader
from harness.pytest_plugin import make_card, wait_for_card
from tests.apps.jpki_login_app import AppError, Login, login
from tests.support.pcscd import ensure_pcscd
from tests.support.slots import slot_lock

#: Shared with tests/harness/test_served.py and tests/panel (one at a time: the slot lock).
SLOT = 6
#: Wrong, right, then wrong until blocked, then the right PIN on a blocked card.
SEQUENCE = ("1111", "1234", "0000", "0000", "0000", "1234")


def _run(reader: str | None) -> list[tuple[bool, int, int, str]]:
    return [
        (r.verified, r.tries_before, r.tries_after, r.message)
        for r in (login(pin, reader) for pin in SEQUENCE)
    ]


EXPECTED = [
    (False, 3, 2, "wrong PIN, 2 tries left"),
    (True, 2, -1, "logged in"),
    (False, 3, 2, "wrong PIN, 2 tries left"),
    (False, 2, 1, "wrong PIN, 1 tries left"),
    (False, 1, 0, "card locked"),
    (False, 0, 0, "card locked"),  # nothing sent to the blocked counter
]


def test_app_reads_the_certificate_and_logs_in(
    myna_pyscard_reader: InProcessReader, myna_card: InProcessCard
) -> None:
    result = login("1234")
    assert result.reader == myna_pyscard_reader.name
    assert result.atr == myna_card.card.atr
    assert result.certificate == myna_card.card.state.pki.auth_cert
    assert (result.verified, result.tries_before, result.message) == (True, 3, "logged in")
    assert myna_card.tries_left("auth") == 3


def test_a_wrong_pin_costs_one_try(myna_pyscard_reader: InProcessReader) -> None:
    result = login("9999")
    assert (result.verified, result.tries_after) == (False, 2)
    assert myna_pyscard_reader.card.tries_left("auth") == 2


def test_blocked_pin_is_reported_and_nothing_is_spent(
    myna_pyscard_reader: InProcessReader, myna_card: InProcessCard
) -> None:
    myna_card.block("auth")
    result = login("1234")
    assert result.message == "card locked" and not result.verified
    assert myna_card.tries_left("auth") == 0


@pytest.mark.myna_card(pins={"auth": "7777"})
def test_the_marker_configures_the_readers_card(myna_pyscard_reader: InProcessReader) -> None:
    assert login("7777").verified
    assert not login("1234").verified


@pytest.mark.myna_card(profile="face-auth")
def test_face_auth_card_reads_but_never_logs_in(myna_pyscard_reader: InProcessReader) -> None:
    # A face-authentication card answers 6984 for its auth PIN: this app says "locked".
    result = login("1234")
    assert result.certificate == myna_pyscard_reader.card.card.state.pki.auth_cert
    assert (result.verified, result.message) == (False, "card locked")


def test_other_readers_are_not_listed(myna_pyscard_reader: InProcessReader) -> None:
    # Real ones are hidden for the test (vpcd's too, though pcscd runs here).
    with pytest.raises(AppError, match="no card reader found"):
        login("1234", "Virtual PCD")


def test_a_pulled_card_is_no_card(myna_pyscard_reader: InProcessReader) -> None:
    from smartcard.Exceptions import NoCardException

    myna_pyscard_reader.remove()
    with pytest.raises(NoCardException):
        login("1234")
    myna_pyscard_reader.insert()
    assert login("1234").verified


def test_the_sequence_in_process(myna_pyscard_reader: InProcessReader) -> None:
    assert _run(None) == EXPECTED
    assert myna_pyscard_reader.card.tries_left("auth") == 0


@pytest.fixture
def vpcd_card() -> Iterator[tuple[str, InProcessCard]]:
    """A fresh card served in vpcd slot 6, the slot's lock held throughout."""
    ensure_pcscd()
    card = make_card()
    with slot_lock(SLOT):
        server = VpcdServer(card.card, port=slot_port(SLOT))
        thread = threading.Thread(target=server.serve, name="app-vpcd", daemon=True)
        thread.start()
        try:
            assert server.connected.wait(10), f"vpcd did not accept the card (slot {SLOT})"
            assert wait_for_card(reader_name(SLOT), 10.0), "pcscd did not see the card"
            yield reader_name(SLOT), card
        finally:
            server.stop()
            thread.join(5)
            wait_for_card(reader_name(SLOT), 5.0, present=False)


@pytest.mark.vpcd
def test_the_same_app_through_vpcd_gets_the_same_answers(
    vpcd_card: tuple[str, InProcessCard],
) -> None:
    reader, card = vpcd_card
    first: Login = login("1234", reader)
    assert first.reader == reader
    assert first.certificate == card.card.state.pki.auth_cert
    assert first.atr == card.card.atr
    card.set_pins(auth="1234")  # back to 3 tries for the sequence
    assert _run(reader) == EXPECTED
    assert card.tries_left("auth") == 0
