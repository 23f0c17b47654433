"""The one place that decides what may be sent to a card, and which scenarios may run on it.

Every card reached through PC/SC counts as physical (``Transport.physical``), the emulator
behind vpcd included: a mistake on a real card costs its owner a trip to city hall. The rules:

1. **Identification** reads free data only (SELECT, READ BINARY, GET DATA): the card's
   identity is the serial number of its authentication certificate. Every reset or
   reconnection identifies the card again before anything else is sent; a different card
   (or one that cannot be identified) stops the run.
2. **Without opt-in** a physical card gets reads, counter queries (empty ``00 20 00 P2``),
   signatures and challenges, and at most one VERIFY with data: the owner's JPKI
   authentication PIN (JPKI selected, P2 ``98``, or ``80`` with EF 0018 selected), given
   explicitly, and only when a wrong value would still leave ``min_tries`` (earlier failures
   may be the owner's). Nothing else is sent.
3. **The named test card** (``--destructive-card ID`` equal to the identity read in 1) may run
   destructive steps. Every command that can compare or replace a secret -- INS 20, 21, 24,
   2C or 32 under any class byte (secure messaging, chaining, logical channels, proprietary
   classes) -- passes the tries check first: an empty VERIFY of the same reference must show
   that a wrong value would leave a try. Only the forms whose counter that query reports
   (``00 20 00``, ``00 24 00/01``, ``00 2C 02/03``, ``80 32 00``) can pass it; any other form
   (or a check that fails) is refused. ``--allow-blocking`` lifts the check, for these commands
   and for the scenarios that block PINs. A mismatch of the ID raises before any APDU that
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

from emulator.grammar import ApduFormatError, CommandApdu, tries_left
from emulator.grammar.ids import JPKI
from emulator.protocol import HOME, Pin
from emulator.redact import SECRET_INS
from harness.hil.identity import CardIdentity, NotAMyNumberCardError, identify
from harness.trace.decode import command_name
from harness.transport import Transport, TransportError

if TYPE_CHECKING:
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
    "Selection",
    "WrongCardError",
    "authorise",
    "blocks",
    "checkable",
    "counter_query",
    "guarded",
    "is_counter_query",
    "normalise_card_id",
    "refusal",
]

#: A VERIFY with data on a card nobody opted in must leave at least this many tries if wrong.
DEFAULT_MIN_TRIES = 2

_ISO, _PROPRIETARY = 0x00, 0x80
INS_SELECT, INS_READ_BINARY, INS_GET_DATA, INS_VERIFY = 0xA4, 0xB0, 0xCA, 0x20
INS_GET_CHALLENGE, INS_SIGN = 0x84, 0x2A
INS_CHANGE_REFERENCE_DATA, INS_RESET_RETRY_COUNTER = 0x24, 0x2C
INS_JICSAP_CHANGE_KEY = 0x32
#: Commands that only read: allowed before and after identification.
_FREE = frozenset({(_ISO, INS_SELECT), (_ISO, INS_READ_BINARY), (_ISO, INS_GET_DATA)})
#: Commands that spend no try and change nothing durable: allowed on an identified card.
_HARMLESS = frozenset({(_PROPRIETARY, INS_SIGN), (_ISO, INS_GET_CHALLENGE)})
#: Instructions that can compare or replace a secret, under ANY class byte (a card may accept
#: secure messaging, chaining or a logical channel; FF is a reader's own class): the one
#: definition the logs and traces redact by (VERIFY 20/21, CHANGE REFERENCE DATA 24/25,
#: RESET RETRY COUNTER 2C/2D, JICSAP CHANGE KEY 32).
_SECRET_INS = SECRET_INS
#: The forms whose counter an empty ``00 20 00 P2`` reports (class, INS) -> P1 values:
#: VERIFY; CHANGE REFERENCE DATA old+new (00) or new only (01); RESET RETRY COUNTER without a
#: resetting code (02 new value, 03 unblock); JICSAP CHANGE KEY. Nothing else is checkable.
_CHECKABLE: dict[tuple[int, int], frozenset[int]] = {
    (_ISO, INS_VERIFY): frozenset({0x00}),
    (_ISO, INS_CHANGE_REFERENCE_DATA): frozenset({0x00, 0x01}),
    (_ISO, INS_RESET_RETRY_COUNTER): frozenset({0x02, 0x03}),
    (_PROPRIETARY, INS_JICSAP_CHANGE_KEY): frozenset({0x00}),
}
#: Commands after which the current EF is still the one selected before.
_KEEP_EF = frozenset(
    {(_ISO, INS_GET_DATA), (_ISO, INS_GET_CHALLENGE), (_ISO, INS_VERIFY), (_PROPRIETARY, INS_SIGN)}
)
#: The owner's one VERIFY on a card nobody opted in: the JPKI auth PIN, by SFI (80 | 18).
_P2_CURRENT_EF = 0x80
_P2_AUTH_PIN = HOME[Pin.AUTH].p2
_MF = 0x3F00


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
IDENTIFYING = Permit(
    None,
    destructive=False,
    blocking=False,
    min_tries=DEFAULT_MIN_TRIES,
    identified=False,
    verifies=0,
)


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


def authorise(
    transport: Transport,
    interlocks: Interlocks,
    identify: Callable[[Transport], CardIdentity] = identify,
) -> Permit:
    """The permit for the card behind *transport*: identifies it (free reads only).

    Raises :class:`WrongCardError` when ``interlocks.destructive_card`` names another card,
    and whatever *identify* raises for a card that is not a My Number card.
    """
    if not transport.physical:
        return UNRESTRICTED
    ident = identify(GuardedTransport(transport, IDENTIFYING, close_inner=False))
    base = Permit(ident.card_id, destructive=False, blocking=False, min_tries=interlocks.min_tries)
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
        return (
            "simulates power loss inside the card: in-process only (through PC/SC the "
            "SIGKILL tearing test covers it: myna-hil soak --tearing N)"
        )
    if scenario.needs_admin and controls is None:
        return "needs the in-process card's test controls (fault injection, quirks, profile)"
    if scenario.destructive and not permit.destructive:
        return (
            "destructive: spends tries or changes PINs; refused on a reader unless "
            "--destructive-card ID names the card (a test card you may lock; ID from "
            "'myna-hil status --reader NAME')"
        )
    if blocks(scenario) and not permit.blocking:
        return "blocks a PIN: needs --allow-blocking as well as --destructive-card ID"
    return None


def _parse(apdu: bytes) -> CommandApdu | None:
    try:
        return CommandApdu.from_bytes(apdu)
    except ApduFormatError:
        return None


def is_counter_query(apdu: bytes) -> bool:
    """An empty ``00 20 00 P2``: reports the counter and spends no try."""
    cmd = _parse(apdu)
    return cmd is not None and (cmd.cla, cmd.ins, cmd.p1) == (_ISO, INS_VERIFY, 0) and not cmd.data


def checkable(apdu: bytes) -> bool:
    """Whether an empty VERIFY of the same P2 reports the counter *apdu* could spend."""
    return (
        len(apdu) >= 4
        and apdu[2] in _CHECKABLE.get((apdu[0], apdu[1]), frozenset())
        and _parse(apdu) is not None
    )


def counter_query(apdu: bytes) -> bytes:
    """The empty VERIFY ``00 20 00 P2`` that reports the counter of *apdu*'s reference (same
    P2; sent under the same selection). Meaningful only when :func:`checkable`."""
    return bytes([_ISO, INS_VERIFY, 0x00, apdu[3]])


class Selection:
    """What the commands sent to a card selected: the application (its AID) and the current
    EF, each ``None`` when unknown. Follows conservatively: anything it cannot follow (a
    failed or unusual SELECT, a command that may make another EF current, a lost answer)
    makes the selection unknown."""

    def __init__(self) -> None:
        self.app: bytes | None = None
        self.ef: int | None = None

    def forget(self) -> None:
        """Nothing is known (after a reset, a power cycle or a lost answer)."""
        self.app = self.ef = None

    def follow(self, apdu: bytes, rsp: bytes | None) -> None:
        """Account for *apdu* answered *rsp* (``None``: no answer)."""
        if rsp is None or len(apdu) < 4:
            self.forget()
            return
        key = (apdu[0], apdu[1])
        if apdu[1] == INS_SELECT:
            cmd = _parse(apdu)
            ok = rsp[-2:] == b"\x90\x00"
            if cmd is None or key != (_ISO, INS_SELECT) or not ok:
                self.forget()
            elif cmd.p1 == 0x04 and cmd.p2 in (0x00, 0x0C):
                self.app, self.ef = cmd.data, None
            elif cmd.p1 in (0x00, 0x02) and len(cmd.data) == 2:
                self.ef = int.from_bytes(cmd.data, "big")
                if self.ef == _MF:
                    self.forget()
            else:
                self.forget()
        elif key == (_ISO, INS_READ_BINARY) and not apdu[2] & 0x80:
            pass  # by current EF; an SFI in P1 makes another EF current
        elif key not in _KEEP_EF:
            self.ef = None


def _header(apdu: bytes) -> str:
    """Name and header of a command, never its data (which may be a PIN)."""
    return f"{command_name(apdu)} ({apdu[:4].hex(' ').upper()})"


class GuardedTransport(Transport):
    """Enforces a :class:`Permit` APDU by APDU; refused commands are never sent.

    A command that can compare or replace a secret is preceded, unless blocking is allowed,
    by an empty VERIFY of the same reference (same P2, same selection): the counter it
    reports decides. The guard follows the selection (application and current EF) from the
    commands it sends; anything it cannot follow makes the selection unknown. After every
    :meth:`reset` the card is identified again (free reads) and must be the permit's card.
    """

    def __init__(
        self,
        inner: Transport,
        permit: Permit,
        *,
        close_inner: bool = True,
        identify: Callable[[Transport], CardIdentity] = identify,
    ) -> None:
        self.inner = inner
        self.permit = permit
        self.name = f"guarded:{inner.name}"
        self.physical = inner.physical
        self._close_inner = close_inner
        self._identify = identify
        self._verifies_left = permit.verifies
        self.stopped: str | None = None
        #: What the commands sent so far selected (see :class:`Selection`).
        self.selection = Selection()

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
            rsp = self.inner.transmit(apdu)
        except TransportError as exc:
            self.stopped = f"the card went away ({exc})"
            raise
        self.selection.follow(apdu, rsp)
        return rsp

    def _why_not(self, apdu: bytes) -> str | None:
        if len(apdu) < 4:
            return "malformed command"
        key = (apdu[0], apdu[1])
        if key in _FREE:
            return None
        if is_counter_query(apdu):
            return None if self.permit.identified else "the card is not identified yet"
        if not self.permit.identified:
            return (
                f"{_header(apdu)} before the card is identified "
                "(identification reads free data only)"
            )
        if key in _HARMLESS:
            return None
        if apdu[1] in _SECRET_INS:
            return self._secret_refusal(apdu)
        if self.permit.destructive:
            return None
        return (
            f"{_header(apdu)} can spend tries or change the card; only for the card named "
            "by --destructive-card ID"
        )

    def _secret_refusal(self, apdu: bytes) -> str | None:
        """A command that can compare or replace a secret: refused, or passes the tries check."""
        if not self.permit.destructive:
            return self._owner_verify_refusal(apdu)
        if self.permit.blocking:
            return None
        if not checkable(apdu):
            return (
                f"{_header(apdu)} can compare or replace a secret in a form whose counter "
                "an empty VERIFY does not report (class, INS or P1); only with "
                "--allow-blocking"
            )
        return self._tries_refusal(apdu)

    def _owner_verify_refusal(self, apdu: bytes) -> str | None:
        if (apdu[0], apdu[1], apdu[2]) != (_ISO, INS_VERIFY, 0) or _parse(apdu) is None:
            return (
                f"{_header(apdu)} can spend tries or change a PIN; only for the card named "
                "by --destructive-card ID"
            )
        if self.permit.verifies == 0:
            return (
                "VERIFY with data on a card nobody opted in: this connection verifies no "
                "PIN (reads and counter queries only)"
            )
        if self._verifies_left is not None and self._verifies_left <= 0:
            return (
                "a second VERIFY with data on a card nobody opted in (the owner's PIN "
                "is verified once)"
            )
        if not self._names_auth_pin(apdu[3]):
            return (
                "on a card nobody opted in, the one VERIFY with data goes only to the JPKI "
                "authentication PIN (JPKI selected, P2 98, or P2 80 with EF 0018 "
                f"selected); P2 {apdu[3]:02X} here"
            )
        return self._tries_refusal(apdu)

    def _names_auth_pin(self, p2: int) -> bool:
        if self.selection.app != JPKI.AID:
            return False
        if p2 == _P2_AUTH_PIN:
            return True
        return p2 == _P2_CURRENT_EF and self.selection.ef == HOME[Pin.AUTH].ef

    def _tries_refusal(self, apdu: bytes) -> str | None:
        """Query the counter of *apdu*'s reference (an empty VERIFY spends no try)."""
        rsp = self._send(counter_query(apdu))
        sw = rsp[-2] << 8 | rsp[-1]
        n = tries_left(sw)
        if n is None:
            return (
                f"{_header(apdu)}: the card did not report the counter (empty VERIFY "
                f"answered {sw:04X})"
            )
        if n - 1 < self.permit.floor:
            return (
                f"{_header(apdu)}: {n} tries left: a wrong value would leave "
                f"{max(n - 1, 0)}, fewer than {self.permit.floor}"
                + (
                    ""
                    if self.permit.destructive
                    else " (earlier failures may be the owner's; --min-tries sets the floor)"
                )
                + ("; --allow-blocking to go on" if self.permit.destructive else "")
            )
        if self._verifies_left is not None:
            self._verifies_left -= 1
        return None

    def reset(self) -> bytes:
        """Reset the card, then identify it again before anything else is sent.

        Whatever is in the reader now (the old card was maybe pulled and another inserted:
        a PC/SC reset then connects to the new one) must be the permit's card, else the run
        stops with :class:`WrongCardError`.
        """
        if self.stopped is not None:
            raise RunStoppedError(f"not reset: {self.stopped}")
        try:
            atr = self.inner.reset()
        except TransportError as exc:
            self.stopped = f"the card went away ({exc})"
            raise
        self.selection.forget()
        if self.permit.card_id is not None:
            self._identify_again()
        return atr

    def _identify_again(self) -> None:
        probe = GuardedTransport(self.inner, IDENTIFYING, close_inner=False)
        try:
            card_id = self._identify(probe).card_id
        except TransportError as exc:
            self.stopped = f"the card went away ({exc})"
            raise
        except (NotAMyNumberCardError, InterlockError) as exc:
            self.stopped = f"after a reset the card could not be identified ({exc})"
            raise WrongCardError(f"{self.stopped}; the run stops, nothing more is sent") from None
        finally:
            self.selection = probe.selection
        if card_id != self.permit.card_id:
            self.stopped = (
                f"after a reset the reader holds another card (ID {card_id}, not "
                f"{self.permit.card_id}: swapped?)"
            )
            raise WrongCardError(f"{self.stopped}; the run stops, nothing more is sent")
        logger.info("card %s identified again after the reset", card_id)

    def close(self) -> None:
        if self._close_inner:
            self.inner.close()


def guarded(transport: Transport, permit: Permit) -> Transport:
    """*transport* behind the permit's guard; an in-process card is returned as it is."""
    if not transport.physical:
        return transport
    return GuardedTransport(transport, permit)
