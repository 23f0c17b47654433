"""The PC/SC transport: any reader pcscd knows -- a physical one or vpcd's virtual one.

Built on pyscard's thin ``smartcard.scard`` layer (one call per PC/SC function), so every
failure arrives as a PC/SC return code and becomes one of the typed errors below, with the
readers that were found when a name did not match. Any card reached through PC/SC is treated
as physical (``physical = True``): the harness cannot tell a virtual reader from a real one
it has never seen, and guessing wrong would spend a real card's PIN tries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from emulator.redact import redact_command
from harness.optional import PYSCARD_MISSING, PyscardMissingError
from harness.transport import TRAFFIC, CardRemovedError, Transport, TransportError

try:
    from smartcard import scard
except ImportError:  # the [pcsc] extra is not installed: say so in one line
    raise PyscardMissingError(f"PC/SC access {PYSCARD_MISSING}") from None

logger = logging.getLogger(__name__)

__all__ = [
    "AmbiguousReaderError",
    "CardResetError",
    "NoCardError",
    "NoSuchReaderError",
    "PcscError",
    "PcscTransport",
    "PcscdNotRunningError",
    "Presence",
    "ReaderPresence",
    "list_readers",
    "select_reader",
]


class PcscError(TransportError):
    """A PC/SC call failed; ``code`` is its return code when there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PcscdNotRunningError(PcscError):
    """The PC/SC service (pcscd) is not running or not reachable."""


class NoSuchReaderError(PcscError):
    """No reader matches the name asked for; ``readers`` lists the ones found."""

    def __init__(self, wanted: str, readers: list[str]) -> None:
        found = ", ".join(repr(r) for r in readers) or "none"
        super().__init__(f"no reader matches {wanted!r}; readers found: {found}")
        self.readers = readers


class AmbiguousReaderError(PcscError):
    """Several readers match the name asked for: refuse to pick one (it may be a real card)."""

    def __init__(self, wanted: str, matches: list[str]) -> None:
        listed = ", ".join(repr(r) for r in matches)
        super().__init__(f"{len(matches)} readers match {wanted!r}: {listed}; name one exactly")
        self.readers = matches


class NoCardError(PcscError):
    """The reader is there but holds no (responsive) card."""


class CardResetError(PcscError):
    """Another application reset the card: security state is lost and the command was not
    sent. The transport has reconnected; the caller decides whether to repeat the command."""


def _u32(code: int) -> int:
    return code & 0xFFFFFFFF


_NO_SERVICE = {_u32(scard.SCARD_E_NO_SERVICE), _u32(scard.SCARD_E_SERVICE_STOPPED)}
_NO_READER = {_u32(scard.SCARD_E_UNKNOWN_READER), _u32(scard.SCARD_E_READER_UNAVAILABLE)}
_NO_CARD = {
    _u32(scard.SCARD_E_NO_SMARTCARD),
    _u32(scard.SCARD_W_REMOVED_CARD),
    _u32(scard.SCARD_W_UNPOWERED_CARD),
    _u32(scard.SCARD_W_UNRESPONSIVE_CARD),
    _u32(scard.SCARD_E_INVALID_HANDLE),
    # vpcd's answer when the card's socket died mid-exchange; a physical reader's when the
    # card stopped answering: either way the card is gone for this exchange.
    _u32(scard.SCARD_E_NOT_TRANSACTED),
}
_RESET = _u32(scard.SCARD_W_RESET_CARD)
_NO_READERS_AVAILABLE = _u32(scard.SCARD_E_NO_READERS_AVAILABLE)
_PROTOCOLS = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
_PCI = {scard.SCARD_PROTOCOL_T0: scard.SCARD_PCI_T0, scard.SCARD_PROTOCOL_T1: scard.SCARD_PCI_T1}


def _message(code: int) -> str:
    return f"{scard.SCardGetErrorMessage(code)} (0x{_u32(code):08X})"


def _establish() -> Any:
    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if code != scard.SCARD_S_SUCCESS:
        if _u32(code) in _NO_SERVICE:
            raise PcscdNotRunningError(f"pcscd is not running: {_message(code)}", code)
        raise PcscError(f"cannot reach the PC/SC service: {_message(code)}", code)
    return context


def _list(context: Any) -> list[str]:
    code, readers = scard.SCardListReaders(context, [])
    if code == scard.SCARD_S_SUCCESS:
        return list(readers)
    if _u32(code) == _NO_READERS_AVAILABLE:
        return []
    if _u32(code) in _NO_SERVICE:
        raise PcscdNotRunningError(f"pcscd is not running: {_message(code)}", code)
    raise PcscError(f"cannot list readers: {_message(code)}", code)


def list_readers() -> list[str]:
    """The names of the readers pcscd knows now (``PcscdNotRunningError`` without pcscd)."""
    context = _establish()
    try:
        return _list(context)
    finally:
        scard.SCardReleaseContext(context)


def select_reader(wanted: str, readers: list[str]) -> str:
    """The reader named exactly ``wanted``, else the only one containing it (any case)."""
    if wanted in readers:
        return wanted
    matches = [r for r in readers if wanted.lower() in r.lower()]
    if not matches:
        raise NoSuchReaderError(wanted, readers)
    if len(matches) > 1:
        raise AmbiguousReaderError(wanted, matches)
    return matches[0]


class PcscTransport(Transport):
    """APDUs to the card in one PC/SC reader, chosen by exact name or unique substring.

    ``wait`` is how long connecting (at open, and after a removal) waits for a card to be
    inserted: a virtual card appears only at pcscd's next presence poll (~0.4 s). After the
    card is removed, the next :meth:`transmit` or :meth:`reset` connects again. With
    ``connect=False`` the reader is only named at open (it may be empty); the first
    :meth:`reset` or :meth:`transmit` connects.
    """

    physical = True

    def __init__(
        self, reader: str, *, wait: float = 0.0, exclusive: bool = False, connect: bool = True
    ) -> None:
        self._context: Any = _establish()
        try:
            self.reader = select_reader(reader, _list(self._context))
        except PcscError:
            scard.SCardReleaseContext(self._context)
            raise
        self.name = f"pcsc:{self.reader}"
        self.wait = wait
        self._share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        self._card: Any = None
        self._pci: Any = None
        self._atr = b""
        self._closed = False
        #: The card went away: the next connection waits for pcscd to notice the removal.
        self._lost = False
        if connect:
            try:
                self._connect()
            except PcscError:
                scard.SCardReleaseContext(self._context)
                raise

    # -- connection -----------------------------------------------------------------------

    def _wait_for_card(self, timeout: float, *, removal_first: bool = False) -> None:
        """Block until the reader reports a card present, at most ``timeout`` seconds.

        With ``removal_first`` (the card was just lost) first wait for pcscd to report the
        reader empty: until its next presence poll it still shows the old card as present.
        """
        deadline = time.monotonic() + timeout
        state = scard.SCARD_STATE_UNAWARE
        seen_empty = not removal_first
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            code, states = scard.SCardGetStatusChange(
                self._context, int(remaining * 1000), [(self.reader, state)]
            )
            if _u32(code) in _NO_SERVICE:
                raise PcscdNotRunningError(f"pcscd went away: {_message(code)}", code)
            if code != scard.SCARD_S_SUCCESS or not states:
                return  # timeout, or a state we cannot wait on: let SCardConnect report it
            state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            if state & scard.SCARD_STATE_EMPTY:
                seen_empty = True
            present = state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE
            if present and seen_empty:
                return

    def _connect(self) -> None:
        if self.wait > 0:
            self._wait_for_card(self.wait, removal_first=self._lost)
        self._lost = False
        code, card, protocol = scard.SCardConnect(
            self._context, self.reader, self._share, _PROTOCOLS
        )
        if code != scard.SCARD_S_SUCCESS:
            self._raise_connect_error(code)
        self._card = card
        self._pci = _PCI.get(protocol, scard.SCARD_PCI_RAW)
        self._atr = self._status_atr()
        logger.info("connected to %s, ATR %s", self.reader, self._atr.hex().upper())

    def _raise_connect_error(self, code: int) -> None:
        u = _u32(code)
        if u in _NO_SERVICE:
            raise PcscdNotRunningError(f"pcscd is not running: {_message(code)}", code)
        if u in _NO_CARD:
            raise NoCardError(f"no card in {self.reader!r}: {_message(code)}", code)
        if u in _NO_READER:
            raise NoSuchReaderError(self.reader, _list(self._context))
        raise PcscError(f"cannot connect to {self.reader!r}: {_message(code)}", code)

    def _status_atr(self) -> bytes:
        code, _name, _state, _protocol, atr = scard.SCardStatus(self._card)
        if code != scard.SCARD_S_SUCCESS:
            raise PcscError(f"cannot read the ATR in {self.reader!r}: {_message(code)}", code)
        return bytes(atr)

    def _drop_card(self, lost: bool = False) -> None:
        self._lost = self._lost or lost
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
            self._card = None

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(f"{self.name} is closed")

    # -- Transport ------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        self._check_open()
        if self._card is None:
            self._connect()
        if logger.isEnabledFor(TRAFFIC):
            logger.log(TRAFFIC, "%s > %s", self.reader, redact_command(apdu))
        code, response = scard.SCardTransmit(self._card, self._pci, list(apdu))
        if code != scard.SCARD_S_SUCCESS:
            self._transmit_failed(code)
        data = bytes(response)
        if len(data) < 2:
            # No SW at all: the card went mute or away mid-command. pcscd + vpcd report
            # success with an empty response here (the error comes only on the next call).
            self._drop_card(lost=True)
            raise CardRemovedError(
                f"no response from the card in {self.reader!r} (mute or removed)"
            )
        if logger.isEnabledFor(TRAFFIC):
            logger.log(TRAFFIC, "%s < %s", self.reader, data.hex().upper())
        return data

    def _transmit_failed(self, code: int) -> None:
        u = _u32(code)
        if u == _RESET:
            scard.SCardReconnect(self._card, self._share, _PROTOCOLS, scard.SCARD_LEAVE_CARD)
            self._atr = self._status_atr()
            raise CardResetError(
                f"card in {self.reader!r} was reset by another application; command not sent",
                code,
            )
        if u in _NO_CARD:
            self._drop_card(lost=True)
            raise CardRemovedError(f"card removed from {self.reader!r}: {_message(code)}")
        if u in _NO_SERVICE:
            self._drop_card()
            raise PcscdNotRunningError(f"pcscd went away: {_message(code)}", code)
        raise PcscError(f"transmit to {self.reader!r} failed: {_message(code)}", code)

    def reset(self) -> bytes:
        """Reconnect with a card reset (security state lost); connect anew after a removal.

        After a removal the card connected may be another one: :mod:`harness.hil.guard`
        identifies it again before anything else is sent.
        """
        self._check_open()
        if self._card is None:
            self._connect()
            return self._atr
        code, protocol = scard.SCardReconnect(
            self._card, self._share, _PROTOCOLS, scard.SCARD_RESET_CARD
        )
        if code != scard.SCARD_S_SUCCESS:
            if _u32(code) not in _NO_CARD:
                raise PcscError(f"cannot reset the card in {self.reader!r}: {_message(code)}", code)
            self._drop_card(lost=True)  # removed (or re-inserted): reconnect powers it up
            self._connect()
            return self._atr
        self._pci = _PCI.get(protocol, scard.SCARD_PCI_RAW)
        self._atr = self._status_atr()
        return self._atr

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_card()
        scard.SCardReleaseContext(self._context)


@dataclass(frozen=True, slots=True)
class Presence:
    """Whether a reader holds a responsive card, and pcsc-lite's count of the card events
    (insertions and removals) in that reader: a count that moved while a card stayed present
    means it was swapped between two looks."""

    present: bool
    events: int


class ReaderPresence:
    """Watches one reader's card presence, on a PC/SC context of its own (a context is used
    by one thread: the watcher runs beside a transport that transmits)."""

    def __init__(self, reader: str) -> None:
        self._context: Any = _establish()
        try:
            self.reader = select_reader(reader, _list(self._context))
        except PcscError:
            scard.SCardReleaseContext(self._context)
            raise
        self._state = scard.SCARD_STATE_UNAWARE
        self._last = Presence(False, 0)

    def wait(self, timeout: float) -> Presence:
        """The presence after the next change, or as it is when *timeout* seconds pass.

        Raises :class:`PcscdNotRunningError` when pcscd goes away and
        :class:`NoSuchReaderError` when the reader does (unplugged).
        """
        code, states = scard.SCardGetStatusChange(
            self._context, max(int(timeout * 1000), 0), [(self.reader, self._state)]
        )
        u = _u32(code)
        if u == _u32(scard.SCARD_E_TIMEOUT):
            return self._last  # no change
        if u in _NO_SERVICE:
            raise PcscdNotRunningError(f"pcscd went away: {_message(code)}", code)
        if u in _NO_READER:
            raise NoSuchReaderError(self.reader, _list(self._context))
        if code != scard.SCARD_S_SUCCESS or not states:
            raise PcscError(f"cannot watch {self.reader!r}: {_message(code)}", code)
        state = states[0][1]
        if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise NoSuchReaderError(self.reader, _list(self._context))
        self._state = state & ~scard.SCARD_STATE_CHANGED
        present = bool(state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE)
        self._last = Presence(present, (state >> 16) & 0xFFFF)
        return self._last

    def close(self) -> None:
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
            self._context = None
