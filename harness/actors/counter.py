"""The municipal counter terminal (市区町村窓口): any PIN, blocked or not, after identity checks.

The clerk's identity check is an input (:class:`IdentityCheck`). The holder in person with a
photo ID is served at once. A legal representative starts a documentary inquiry: the request
stays pending and is completed at a second visit, once the inquiry's answer is back
(docs/scenarios.md rule 3).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from harness.actors.issuer import reset_pin
from harness.clock import Clock
from harness.errors import ApduError
from harness.trace.recorder import note
from harness.transport import Transport

#: Changes a card's profile; only an in-process card offers one (the [model] counter
#: procedure that re-issues the signing certificate is not an APDU in this project).
ProfileChanger = Callable[[str, str | None, str | None], None]


class Who(StrEnum):
    HOLDER = "holder in person"
    REPRESENTATIVE = "legal representative"


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    """What the clerk verified at this visit."""

    who: Who = Who.HOLDER
    documents_ok: bool = True
    inquiry_answered: bool = False  # representative: the documentary inquiry came back


class Status(StrEnum):
    DONE = "done"
    PENDING = "pending: documentary inquiry sent, come back"
    REFUSED = "refused"


@dataclass
class CounterRequest:
    number: int
    pins: dict[str, str] = field(repr=False)  # PIN name -> new value; never shown
    status: Status = Status.PENDING
    message: str = ""

    @property
    def names(self) -> list[str]:
        return list(self.pins)


class CounterTerminal:
    """Re-sets PINs through issuer authentication (docs/card.md#issuer-reset, [model])."""

    NAME = "counter"

    def __init__(
        self, transport: Transport, clock: Clock, profile_changer: ProfileChanger | None = None
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.profile_changer = profile_changer
        self._numbers = itertools.count(1)
        self.pending: dict[int, CounterRequest] = {}

    def request_reset(self, new_values: dict[str, str], check: IdentityCheck) -> CounterRequest:
        """Open a re-set request for one or more PINs; served now or left pending."""
        req = CounterRequest(next(self._numbers), dict(new_values))
        if not check.documents_ok:
            return self._finish(req, Status.REFUSED, "identity documents not sufficient")
        if check.who is Who.REPRESENTATIVE and not check.inquiry_answered:
            self.pending[req.number] = req
            note(self.transport, self.NAME, "pending", request=req.number, pins=req.names)
            req.message = "documentary inquiry sent to the holder; second visit needed"
            return req
        return self._perform(req)

    def complete(self, number: int, check: IdentityCheck) -> CounterRequest:
        """The second visit: the inquiry's answer is presented, the request is performed."""
        req = self.pending.get(number)
        if req is None:
            return CounterRequest(number, {}, Status.REFUSED, "no such pending request")
        if not (check.documents_ok and check.inquiry_answered):
            req.message = "inquiry answer still missing"
            return req
        del self.pending[number]
        return self._perform(req)

    def _perform(self, req: CounterRequest) -> CounterRequest:
        try:
            for name, value in req.pins.items():
                reset_pin(self.transport, name, value)
        except ApduError as exc:
            return self._finish(req, Status.REFUSED, f"card refused: {exc}")
        return self._finish(req, Status.DONE, f"re-set {', '.join(req.names)}")

    def switch_to_pin_card(self, auth: str, sign: str, check: IdentityCheck) -> str:
        """[model] Face-auth -> PIN card: re-issue the signing certificate, set both secrets."""
        if not check.documents_ok:
            return "refused: identity documents not sufficient"
        if self.profile_changer is None:
            return "refused: this terminal cannot re-issue certificates on this card"
        self.profile_changer("standard", auth, sign)
        self.transport.reset()
        note(self.transport, self.NAME, "profile", profile="standard")
        return "switched to a PIN card"

    def _finish(self, req: CounterRequest, status: Status, message: str) -> CounterRequest:
        req.status, req.message = status, message
        note(self.transport, self.NAME, status.name.lower(), request=req.number, pins=req.names)
        return req
