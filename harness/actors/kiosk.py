"""Smartphone reset app, J-LIS-style backend and convenience-store kiosk (docs/scenarios.md rule 2).

The app starts a request at T0 for one JPKI secret (the other one must be remembered); the
backend keeps it for 24 hours; at the kiosk the remembered secret is verified on the card
and the forgotten or blocked one is re-set under the backend's issuer authentication.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from emulator.commands import issuer_cryptogram
from emulator.protocol import JPKI_PINS
from harness.actors.issuer import reset_pin
from harness.clock import Clock
from harness.errors import ApduError, NoSuchFileError, WrongPinError
from harness.sessions import JpkiSession
from harness.trace.recorder import note
from harness.transport import Transport

WINDOW = dt.timedelta(hours=24)
KIOSK_PINS = JPKI_PINS
OTHER = {"auth": "sign", "sign": "auth"}

GO_COUNTER = "refused: go to the municipal counter"
START_AGAIN = "refused: more than 24 hours since the app request; start again in the app"
NOT_APPLICABLE = "refused: kiosk PIN reset does not apply to a face-authentication card"


@dataclass(frozen=True, slots=True)
class Ticket:
    number: int
    pin: str
    started: dt.datetime


@dataclass(frozen=True, slots=True)
class KioskResult:
    ok: bool
    message: str


class JlisBackend:
    """Holds reset requests and answers the kiosk's issuer challenges (TEST key)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._numbers = itertools.count(1)
        self.tickets: dict[int, Ticket] = {}

    def register(self, pin: str) -> Ticket:
        t = Ticket(next(self._numbers), pin, self.clock.now())
        self.tickets[t.number] = t
        return t

    def valid(self, ticket: Ticket) -> bool:
        """Within 24 hours of the app start (a request is used once)."""
        return ticket.number in self.tickets and self.clock.now() - ticket.started <= WINDOW

    def consume(self, ticket: Ticket) -> None:
        self.tickets.pop(ticket.number, None)

    def cryptogram(self, challenge: bytes) -> bytes:
        return issuer_cryptogram(challenge)


class ResetApp:
    """The smartphone app: checks eligibility, reads the card, starts the request."""

    NAME = "reset-app"

    def __init__(self, transport: Transport, backend: JlisBackend) -> None:
        self.transport = transport
        self.backend = backend

    def start(self, pin: str, *, face_check_ok: bool = True) -> Ticket | KioskResult:
        if pin not in KIOSK_PINS:
            return self._refuse(f"{GO_COUNTER} (only the JPKI secrets can be re-set here)")
        if not face_check_ok:
            return self._refuse("refused: face check failed")
        if not JpkiSession(self.transport).cert_availability().sign:
            return self._refuse(NOT_APPLICABLE)
        ticket = self.backend.register(pin)
        note(self.transport, self.NAME, "started", pin=pin, ticket=ticket.number)
        return ticket

    def _refuse(self, message: str) -> KioskResult:
        note(self.transport, self.NAME, "refused", text=message)
        return KioskResult(False, message)


class Kiosk:
    """The multi-copy machine: verify the remembered secret, re-set the other one."""

    NAME = "kiosk"

    def __init__(self, transport: Transport, backend: JlisBackend) -> None:
        self.transport = transport
        self.backend = backend

    def reset(self, ticket: Ticket, remembered: str | None, new_value: str) -> KioskResult:
        if not self.backend.valid(ticket):
            return self._done(False, START_AGAIN)
        other = OTHER[ticket.pin]
        jpki = JpkiSession(self.transport)
        try:
            status = jpki.pin_status(other)
        except NoSuchFileError:
            return self._done(False, NOT_APPLICABLE)
        if not status.usable:
            return self._done(False, NOT_APPLICABLE)
        if status.blocked or remembered is None:
            return self._done(
                False,
                f"{GO_COUNTER} (the {other} secret is "
                f"{'blocked' if status.blocked else 'not known'})",
            )
        try:
            jpki.verify(other, remembered)
        except WrongPinError as exc:
            if exc.blocked:
                return self._done(False, f"{GO_COUNTER} (the {other} secret is now blocked)")
            return self._done(False, f"wrong {other} secret, {exc.tries_left} tries left")
        except ApduError as exc:
            return self._done(False, f"{GO_COUNTER} ({exc})")
        reset_pin(self.transport, ticket.pin, new_value, self.backend.cryptogram, session=jpki)
        self.backend.consume(ticket)
        return self._done(True, f"re-set the {ticket.pin} secret")

    def _done(self, ok: bool, message: str) -> KioskResult:
        note(self.transport, self.NAME, "done" if ok else "refused", text=message)
        return KioskResult(ok, message)
