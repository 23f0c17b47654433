"""Actors' rules (docs/scenarios.md rules 2-4) checked directly, edges included."""

from __future__ import annotations

import datetime as dt

import pytest

from harness.actors.apps import SHOWN_NO_PIN_CARD, ETaxSigner, Habits, MynaportalLogin, lowercase
from harness.actors.counter import CounterTerminal, IdentityCheck, Status, Who
from harness.actors.kiosk import GO_COUNTER, START_AGAIN, JlisBackend, Kiosk, ResetApp, Ticket
from harness.cards import new_card
from harness.clock import FakeClock
from harness.controls import InProcessCard


@pytest.fixture
def vc() -> InProcessCard:
    return InProcessCard(new_card())


def test_fake_clock_moves_only_forward() -> None:
    c = FakeClock()
    t0 = c.now()
    assert c.advance(hours=24) - t0 == dt.timedelta(hours=24)
    with pytest.raises(ValueError):
        c.advance(dt.timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("delay", "ok"), [(dt.timedelta(hours=24), True), (dt.timedelta(hours=24, seconds=1), False)]
)
def test_kiosk_window_is_24_hours_inclusive(
    vc: InProcessCard, delay: dt.timedelta, ok: bool
) -> None:
    clock = FakeClock()
    backend = JlisBackend(clock)
    vc.block("auth")
    ticket = ResetApp(vc.transport, backend).start("auth")
    assert isinstance(ticket, Ticket)
    clock.advance(delay)
    result = Kiosk(vc.transport, backend).reset(ticket, "ABC123", "4321")
    assert result.ok is ok
    assert vc.tries_left("auth") == (3 if ok else 0)
    if not ok:
        assert result.message == START_AGAIN


def test_kiosk_ticket_is_used_once(vc: InProcessCard) -> None:
    backend = JlisBackend(FakeClock())
    ticket = ResetApp(vc.transport, backend).start("sign")
    assert isinstance(ticket, Ticket)
    assert Kiosk(vc.transport, backend).reset(ticket, "1234", "NEWPASS1").ok
    assert not Kiosk(vc.transport, backend).reset(ticket, "1234", "NEWPASS2").ok


def test_kiosk_wrong_remembered_secret_spends_a_try_and_refuses(vc: InProcessCard) -> None:
    backend = JlisBackend(FakeClock())
    ticket = ResetApp(vc.transport, backend).start("auth")
    assert isinstance(ticket, Ticket)
    result = Kiosk(vc.transport, backend).reset(ticket, "WRONG77", "4321")
    assert not result.ok and "4 tries left" in result.message
    assert vc.tries_left("sign") == 4


def test_kiosk_forgotten_other_secret_goes_to_counter(vc: InProcessCard) -> None:
    backend = JlisBackend(FakeClock())
    ticket = ResetApp(vc.transport, backend).start("auth")
    assert isinstance(ticket, Ticket)
    result = Kiosk(vc.transport, backend).reset(ticket, None, "4321")
    assert result.message.startswith(GO_COUNTER)


def test_reset_app_refuses_ineligible_pins(vc: InProcessCard) -> None:
    for pin in ("juki", "helper"):
        got = ResetApp(vc.transport, JlisBackend(FakeClock())).start(pin)
        assert not isinstance(got, Ticket) and got.message.startswith(GO_COUNTER)


def test_counter_refuses_without_documents_and_keeps_pending(vc: InProcessCard) -> None:
    counter = CounterTerminal(vc.transport, FakeClock())
    vc.block("helper")
    assert (
        counter.request_reset({"helper": "5432"}, IdentityCheck(documents_ok=False)).status
        is Status.REFUSED
    )
    req = counter.request_reset({"helper": "5432"}, IdentityCheck(Who.REPRESENTATIVE))
    assert req.status is Status.PENDING and vc.tries_left("helper") == 0
    assert "5432" not in repr(req)
    assert (
        counter.complete(
            req.number, IdentityCheck(Who.REPRESENTATIVE, inquiry_answered=True)
        ).status
        is Status.DONE
    )
    assert vc.tries_left("helper") == 3
    assert counter.complete(req.number, IdentityCheck()).status is Status.REFUSED


def test_face_auth_apps_show_a_definite_error_and_spend_nothing() -> None:
    vc = InProcessCard(new_card("face-auth"))
    assert MynaportalLogin(vc.transport).login("1234").shown == SHOWN_NO_PIN_CARD
    assert ETaxSigner(vc.transport).sign("ABC123", b"doc").shown == SHOWN_NO_PIN_CARD
    assert vc.tries_left("juki") == 3 and vc.tries_left("helper") == 3


def test_app_habit_changes_what_is_sent(vc: InProcessCard) -> None:
    shown = ETaxSigner(vc.transport, Habits(transform=lowercase)).sign("ABC123", b"doc").shown
    assert shown == "wrong PIN, 4 tries left"
    assert ETaxSigner(vc.transport).sign("ABC123", b"doc").shown == "signed"
