"""The one place that decides what may be sent to a card, and which scenarios may run on it.

Every card reached through PC/SC counts as physical (``Transport.physical``), the emulator
behind vpcd included: a mistake on a real card costs its owner a trip to city hall. The rules:

1. **Identification** reads free data only (SELECT, READ BINARY, GET DATA): the card's
   identity is the serial number of its authentication certificate.
2. **Without opt-in** a physical card gets reads, counter queries (empty VERIFY), signatures
   and challenges, and at most one VERIFY with data (the owner's PIN, given explicitly), and
   only when a wrong value would still leave ``min_tries`` (earlier failures may be the
   owner's). Nothing else is sent.
3. **The named test card** (``--destructive-card ID`` equal to the identity read in 1) may run
   destructive steps; a VERIFY that could block a PIN (one try left) and the scenarios that
   block PINs need ``--allow-blocking`` as well. A mismatch raises before any APDU that
   could spend a try.
4. Once the card went away (pulled, reader unplugged, pcscd gone) nothing more is sent on that
   connection: no retry can spend a try on whatever card is inserted next.

:func:`authorise` turns :class:`Interlocks` (what the user asked for) into a :class:`Permit`
for one connected card; :func:`guarded` enforces the permit APDU by APDU; :func:`refusal`
decides per scenario. The only opt-in is the card's identity: a fixture that started a
virtual card knows the identity it created and passes it like a user would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from emulator.grammar import tries_left
from harness.transport import Transport, TransportError

if TYPE_CHECKING:
    from harness.hil_identity import CardIdentity
    from harness.scenarios.base import Scenario

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MIN_TRIES",
    "GuardedTransport",
    "InterlockError",
    "Interlocks",
    "Permit",
    "RefusedCommandError",
    "RunStoppedError",
    "WrongCardError",
    "authorise",
    "blocks",
    "guarded",
    "normalise_card_id",
    "refusal",
]

#: A VERIFY with data on a card nobody opted in must leave at least this many tries if wrong.
DEFAULT_MIN_TRIES = 2

_ISO, _PROPRIETARY = 0x00, 0x80
INS_SELECT, INS_READ_BINARY, INS_GET_DATA, INS_VERIFY = 0xA4, 0xB0, 0xCA, 0x20
INS_GET_CHALLENGE, INS_SIGN = 0x84, 0x2A
#: Commands that only read: allowed before and after identification.
_FREE = frozenset({(_ISO, INS_SELECT), (_ISO, INS_READ_BINARY), (_ISO, INS_GET_DATA)})
#: Commands that spend no try and change nothing durable: allowed on an identified card.
_HARMLESS = frozenset({(_PROPRIETARY, INS_SIGN), (_ISO, INS_GET_CHALLENGE)})


class InterlockError(Exception):
    """The interlocks stopped the run (the message says why; it never holds a PIN)."""


class WrongCardError(InterlockError):
    """The card in the reader is not the one named with ``--destructive-card``."""


class RefusedCommandError(InterlockError):
    """The guard refused to send an APDU; nothing was sent."""


class RunStoppedError(InterlockError):
    """The card went away earlier on this connection; nothing more is sent (no retries)."""


@dataclass(frozen=True)
class Interlocks:
    """What the user opted into; the default is nothing (a card nobody named)."""

    destructive_card: str | None = None
    allow_blocking: bool = False
    min_tries: int = DEFAULT_MIN_TRIES


@dataclass(frozen=True)
class Permit:
    """What may be sent to one connected card, decided from its identity.

    ``verifies`` is how many VERIFY commands with data may still be sent (``None``: any).
    """

    card_id: str | None
    destructive: bool
    blocking: bool
    min_tries: int
    identified: bool = True
    verifies: int | None = 1

    @property
    def floor(self) -> int:
        """Tries a wrong value must leave: ``min_tries``; 1 on the test card; 0 if blocking."""
        if self.blocking:
            return 0
        return 1 if self.destructive else self.min_tries


#: A transport that is not physical (the in-process card): no restriction.
UNRESTRICTED = Permit(None, destructive=True, blocking=True, min_tries=0, verifies=None)
#: Before identification: free reads only.
IDENTIFYING = Permit(None, destructive=False, blocking=False, min_tries=DEFAULT_MIN_TRIES,
                     identified=False, verifies=0)


def normalise_card_id(text: str) -> str:
    """A card ID as ``myna-hil status`` prints it (upper-case hex, no ``0x``, ``:`` or spaces).

    Raises ``ValueError`` for anything that is not a hex number.
    """
    cleaned = text.strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned:
        raise ValueError("empty card ID")
    try:
        return format(int(cleaned, 16), "X")
    except ValueError:
        raise ValueError(f"card ID {text!r} is not a hexadecimal serial number") from None


def _identify(transport: Transport) -> CardIdentity:
    from harness.hil_identity import identify

    return identify(transport)


def authorise(
    transport: Transport,
    interlocks: Interlocks,
    identify: Callable[[Transport], CardIdentity] = _identify,
) -> Permit:
    """The permit for the card behind *transport*: identifies it (free reads only).

    Raises :class:`WrongCardError` when ``interlocks.destructive_card`` names another card,
    and whatever *identify* raises for a card that is not a My Number card.
    """
    if not transport.physical:
        return UNRESTRICTED
    ident = identify(GuardedTransport(transport, IDENTIFYING, close_inner=False))
    base = Permit(ident.card_id, destructive=False, blocking=False,
                  min_tries=interlocks.min_tries)
    wanted = interlocks.destructive_card
    if wanted is None:
        return base
    if normalise_card_id(wanted) != ident.card_id:
        raise WrongCardError(
            f"--destructive-card {wanted} does not name the card in "
            f"{transport.name.rpartition(':')[2]!r} "
            f"(its ID is {ident.card_id}); stopped before any command that could spend a try"
        )
    return replace(base, destructive=True, blocking=interlocks.allow_blocking, verifies=None)


def blocks(scenario: Scenario) -> bool:
    """Whether *scenario* can block a PIN.

    Every destructive scenario of the catalogue drives a counter to 0 (or, like
    ``phantom-app-retry``, to 1, where one more wrong value blocks): all of them count.
    """
    return scenario.destructive


def refusal(
    scenario: Scenario, transport: Transport, permit: Permit, controls: object | None = None
) -> str | None:
    """Why *scenario* must not run on *transport* under *permit*, or ``None`` when it may.

    *controls* are the test controls of a card this process serves itself (``--vpcd-slot``);
    a reader's card has none.
    """
    if not transport.physical:
        return None
    if scenario.tears:
        return ("simulates power loss inside the card: in-process only (through PC/SC the "
                "SIGKILL tearing test covers it: myna-hil soak --tearing N)")
    if scenario.needs_admin and controls is None:
        return "needs the in-process card's test controls (fault injection, quirks, profile)"
    if scenario.destructive and not permit.destructive:
        return ("destructive: spends tries or changes PINs; refused on a reader unless "
                "--destructive-card ID names the card (a test card you may lock; ID from "
                "'myna-hil status --reader NAME')")
    if blocks(scenario) and not permit.blocking:
        return "blocks a PIN: needs --allow-blocking as well as --destructive-card ID"
    return None


def _is_empty_verify(apdu: bytes) -> bool:
    return len(apdu) == 4 or (len(apdu) == 5 and apdu[4] == 0)


class GuardedTransport(Transport):
    """Enforces a :class:`Permit` APDU by APDU; refused commands are never sent.

    A VERIFY with data is preceded, unless blocking is allowed, by an empty VERIFY of the
    same reference (same P1 P2, same selection): the counter it reports decides.
    """

    def __init__(self, inner: Transport, permit: Permit, *, close_inner: bool = True) -> None:
        self.inner = inner
        self.permit = permit
        self.name = f"guarded:{inner.name}"
        self.physical = inner.physical
        self._close_inner = close_inner
        self._verifies_left = permit.verifies
        self.stopped: str | None = None

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> bytes:
        if self.stopped is not None:
            raise RunStoppedError(f"not sent: {self.stopped}; the run stops (nothing retried)")
        why = self._why_not(apdu)
        if why is not None:
            raise RefusedCommandError(f"refused, not sent: {why}")
        return self._send(apdu)

    def _send(self, apdu: bytes) -> bytes:
        try:
            return self.inner.transmit(apdu)
        except TransportError as exc:
            self.stopped = f"the card went away ({exc})"
            raise

    def _why_not(self, apdu: bytes) -> str | None:
        if len(apdu) < 4:
            return "malformed command"
        key = (apdu[0], apdu[1])
        if key in _FREE:
            return None
        if key == (_ISO, INS_VERIFY) and _is_empty_verify(apdu):
            return None if self.permit.identified else "the card is not identified yet"
        if not self.permit.identified:
            return (f"{_name(apdu)} before the card is identified "
                    "(identification reads free data only)")
        if key in _HARMLESS:
            return None
        if key == (_ISO, INS_VERIFY):
            return self._verify_refusal(apdu)
        if self.permit.destructive:
            return None
        return (f"{_name(apdu)} can spend tries or change the card; only for the card named "
                "by --destructive-card ID")

    def _verify_refusal(self, apdu: bytes) -> str | None:
        if self._verifies_left is not None and self._verifies_left <= 0:
            return ("a second VERIFY with data on a card nobody opted in (the owner's PIN "
                    "is verified once)")
        if self.permit.blocking:
            return None
        rsp = self._send(apdu[:4])  # empty VERIFY of the same reference: no try spent
        sw = rsp[-2] << 8 | rsp[-1]
        n = tries_left(sw)
        if n is None:
            return f"the card did not report the counter (empty VERIFY answered {sw:04X})"
        if n - 1 < self.permit.floor:
            return (f"{n} tries left: a wrong value would leave {max(n - 1, 0)}, fewer than "
                    f"{self.permit.floor}"
                    + ("" if self.permit.destructive else " (earlier failures may be the "
                       "owner's; --min-tries sets the floor)")
                    + ("; --allow-blocking to go on" if self.permit.destructive else ""))
        if self._verifies_left is not None:
            self._verifies_left -= 1
        return None

    def reset(self) -> bytes:
        if self.stopped is not None:
            raise RunStoppedError(f"not reset: {self.stopped}")
        try:
            return self.inner.reset()
        except TransportError as exc:
            self.stopped = f"the card went away ({exc})"
            raise

    def close(self) -> None:
        if self._close_inner:
            self.inner.close()


def _name(apdu: bytes) -> str:
    from harness.trace.decode import command_name

    return command_name(apdu)


def guarded(transport: Transport, permit: Permit) -> Transport:
    """*transport* behind the permit's guard; an in-process card is returned as it is."""
    if not transport.physical:
        return transport
    return GuardedTransport(transport, permit)
