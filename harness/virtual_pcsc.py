"""An in-process PC/SC service: the ``SCard*`` functions of pyscard's ``smartcard.scard``
layer, answered by virtual readers holding emulator cards. No pcscd, no driver, no root.

:mod:`harness.pyscard_reader` installs a :class:`VirtualPcsc` under pyscard, so an app's
``readers()``, ``createConnection()``, ``transmit()``, ``CardRequest`` and ``CardMonitor``
reach these readers unchanged. This module itself never imports pyscard: it is given
pyscard's constants (``consts``, the ``smartcard.scard`` module) so that every return code
and state flag it answers is the very value pyscard's own code compares against.

What it models, from pcsc-lite (docs/pyscard.md has the list):

- handles: contexts and card handles are this service's own numbers (above 2**62, never a
  real pcsc-lite or WinSCard handle); a call with any other handle is not ours
  (:meth:`VirtualPcsc.owns`) and goes to the real PC/SC library;
- power: the first connection powers the card up; when the last one goes away the card is
  powered off, as pcscd does (so verified PINs last as long as a connection);
- sharing: ``SCARD_SHARE_EXCLUSIVE`` refuses a second connection (and is refused while
  another is open), transactions block other handles until ended;
- reset and removal: a reset through one handle answers ``SCARD_W_RESET_CARD`` once on the
  others; a removed card answers ``SCARD_W_REMOVED_CARD`` until the handle reconnects;
- ``SCardGetStatusChange``: present/empty/in-use/exclusive flags, the ATR, the card event
  counter in the high word, the ``\\\\?PnP?\\Notification`` reader, timeouts and
  ``SCardCancel``.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emulator.card import Card
from emulator.errors import CardPoweredOff

__all__ = ["PNP_READER", "VirtualPcsc", "VirtualReader", "is_virtual_handle"]

#: pcsc-lite's pseudo reader that reports reader arrivals and removals.
PNP_READER = "\\\\?PnP?\\Notification"

# SCardStatus's card state (not exported by pyscard): pcsc-lite's flags, WinSCard's enum.
_STATUS_SPECIFIC = 6 if sys.platform == "win32" else 0x0004 | 0x0010 | 0x0040
_STATUS_ABSENT = 1 if sys.platform == "win32" else 0x0002
#: Our handles live above every real one (pcsc-lite: 32-bit, WinSCard: user-space pointers).
_HANDLE_BASE = 0x4D594E41 << 32
_HANDLE_SPAN = 1 << 32
_DEFAULT_GROUP = "SCard$DefaultReaders"
#: One sequence for every service of the process: a handle an ended service gave out is
#: never given out again, so a late release of it cannot hit a live one.
_handles = itertools.count(_HANDLE_BASE + 1)


def is_virtual_handle(handle: object) -> bool:
    """Whether *handle* was made by a :class:`VirtualPcsc` (of this run or an ended one)."""
    return isinstance(handle, int) and _HANDLE_BASE < handle < _HANDLE_BASE + _HANDLE_SPAN


class VirtualReader:
    """A reader of the virtual PC/SC service and the emulator card in it.

    ``insert()`` / ``remove()`` act as a user would: connections to a removed card fail with
    ``SCARD_W_REMOVED_CARD`` and card monitors see the change.
    """

    def __init__(self, name: str, card: Card, *, inserted: bool = True) -> None:
        self.name = name
        self.card = card
        self.inserted = inserted
        #: pcsc-lite's per-reader card event counter (high word of the event state).
        self.events = 0
        self._service: VirtualPcsc | None = None

    def __repr__(self) -> str:
        return f"VirtualReader({self.name!r}, inserted={self.inserted})"

    def insert(self) -> None:
        """Put the card (back) into the reader."""
        self._set_inserted(True)

    def remove(self) -> None:
        """Pull the card out: open connections lose it, monitors see it go."""
        self._set_inserted(False)

    def _set_inserted(self, inserted: bool) -> None:
        service = self._service
        if service is None:
            self.inserted = inserted
            return
        with service.lock:
            if self.inserted == inserted:
                return
            self.inserted = inserted
            self.events = (self.events + 1) & 0xFFFF
            if not inserted:
                self.card.power_off()
                for handle in service.cards_in(self):
                    handle.removed = True
            service.lock.notify_all()


@dataclass
class _Context:
    cancelled: bool = False


@dataclass
class _CardHandle:
    context: int
    reader: VirtualReader
    share: int
    protocol: int
    removed: bool = False
    was_reset: bool = False
    transactions: int = 0
    pending: list[str] = field(default_factory=list)


class VirtualPcsc:
    """The ``SCard*`` functions over a set of :class:`VirtualReader`, with pyscard's Python
    signatures and results (``(hresult, value, ...)`` tuples, lists of byte values)."""

    def __init__(self, consts: Any, readers: Iterable[VirtualReader] = ()) -> None:
        self.c = consts
        self.lock = threading.Condition()
        self.readers: dict[str, VirtualReader] = {}
        self._contexts: dict[int, _Context] = {}
        self._cards: dict[int, _CardHandle] = {}
        self._transaction_owner: dict[str, int] = {}
        self.closed = False
        for reader in readers:
            self.add_reader(reader)

    # -- the service's own controls --------------------------------------------------------

    def add_reader(self, reader: VirtualReader) -> None:
        with self.lock:
            if reader.name in self.readers:
                raise ValueError(f"a virtual reader named {reader.name!r} exists already")
            reader._service = self
            reader.card.power_off()  # the first connection powers it up, as pcscd does
            self.readers[reader.name] = reader
            self.lock.notify_all()

    def owns(self, handle: object) -> bool:
        """Whether *handle* (a context or card handle) is one of this service's."""
        return isinstance(handle, int) and (handle in self._contexts or handle in self._cards)

    def cards_in(self, reader: VirtualReader) -> list[_CardHandle]:
        return [h for h in self._cards.values() if h.reader is reader]

    def close(self) -> None:
        """End the service: blocked waits return ``SCARD_E_CANCELLED``, cards power off."""
        with self.lock:
            self.closed = True
            for context in self._contexts.values():
                context.cancelled = True
            for reader in self.readers.values():
                reader.card.power_off()
                reader._service = None
            self.lock.notify_all()

    # -- contexts ------------------------------------------------------------------------------

    def SCardEstablishContext(self, scope: int) -> list[Any]:
        with self.lock:
            handle = next(_handles)
            self._contexts[handle] = _Context()
            return [self.c.SCARD_S_SUCCESS, handle]

    def SCardReleaseContext(self, hcontext: int) -> int:
        with self.lock:
            if self._contexts.pop(hcontext, None) is None:
                return int(self.c.SCARD_E_INVALID_HANDLE)
            for handle, card in list(self._cards.items()):
                if card.context == hcontext:
                    self._drop(handle, self.c.SCARD_LEAVE_CARD)
            self.lock.notify_all()
            return int(self.c.SCARD_S_SUCCESS)

    def SCardIsValidContext(self, hcontext: int) -> int:
        ok = hcontext in self._contexts
        return int(self.c.SCARD_S_SUCCESS if ok else self.c.SCARD_E_INVALID_HANDLE)

    def SCardCancel(self, hcontext: int) -> int:
        with self.lock:
            context = self._contexts.get(hcontext)
            if context is None:
                return int(self.c.SCARD_E_INVALID_HANDLE)
            context.cancelled = True
            self.lock.notify_all()
            return int(self.c.SCARD_S_SUCCESS)

    def SCardListReaders(self, hcontext: int, groups: list[str]) -> list[Any]:
        with self.lock:
            if hcontext not in self._contexts:
                return [self.c.SCARD_E_INVALID_HANDLE, []]
            if groups and _DEFAULT_GROUP not in groups:
                return [self.c.SCARD_E_NO_READERS_AVAILABLE, []]
            names = list(self.readers)
            if not names:
                return [self.c.SCARD_E_NO_READERS_AVAILABLE, []]
            return [self.c.SCARD_S_SUCCESS, names]

    def SCardListReaderGroups(self, hcontext: int) -> list[Any]:
        if hcontext not in self._contexts:
            return [self.c.SCARD_E_INVALID_HANDLE, []]
        return [self.c.SCARD_S_SUCCESS, [_DEFAULT_GROUP]]

    # -- status changes ------------------------------------------------------------------------

    def _event_state(self, name: str, current: int) -> tuple[int, list[int]]:
        c = self.c
        if name == PNP_READER:
            return (len(self.readers) & 0xFFFF) << 16, []
        reader = self.readers.get(name)
        if reader is None:
            return c.SCARD_STATE_UNKNOWN | c.SCARD_STATE_CHANGED | c.SCARD_STATE_IGNORE, []
        if not reader.inserted:
            return (reader.events << 16) | c.SCARD_STATE_EMPTY, []
        state = (reader.events << 16) | c.SCARD_STATE_PRESENT
        handles = self.cards_in(reader)
        if handles:
            state |= c.SCARD_STATE_INUSE
            if any(h.share == c.SCARD_SHARE_EXCLUSIVE for h in handles):
                state |= c.SCARD_STATE_EXCLUSIVE
        return state, list(reader.card.atr)

    def _changed(self, name: str, current: int, event: int) -> bool:
        c = self.c
        if event & c.SCARD_STATE_CHANGED:
            return True
        if name == PNP_READER:
            return (current >> 16) != (event >> 16)
        low = ~(c.SCARD_STATE_CHANGED | c.SCARD_STATE_IGNORE) & 0xFFFF
        if (current & low) != (event & low):
            return True
        return bool(current >> 16) and (current >> 16) != (event >> 16)

    def SCardGetStatusChange(
        self, hcontext: int, timeout: int, states: list[tuple[Any, ...]]
    ) -> list[Any]:
        c = self.c
        infinite = timeout in (c.INFINITE, 0xFFFFFFFF)
        deadline = None if infinite else time.monotonic() + max(0, timeout) / 1000
        with self.lock:
            context = self._contexts.get(hcontext)
            if context is None:
                return [c.SCARD_E_INVALID_HANDLE, []]
            context.cancelled = False
            while True:
                result: list[tuple[str, int, list[int]]] = []
                any_changed = False
                for entry in states:
                    name, current = str(entry[0]), int(entry[1])
                    if current & c.SCARD_STATE_IGNORE:
                        result.append((name, current, []))
                        continue
                    event, atr = self._event_state(name, current)
                    if self._changed(name, current, event):
                        event |= c.SCARD_STATE_CHANGED
                        any_changed = True
                    result.append((name, event, atr))
                if any_changed:
                    return [c.SCARD_S_SUCCESS, result]
                if context.cancelled or self.closed:
                    context.cancelled = False
                    return [c.SCARD_E_CANCELLED, result]
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return [c.SCARD_E_TIMEOUT, result]
                self.lock.wait(remaining)

    # -- connections ---------------------------------------------------------------------------

    def _protocol(self, preferred: int) -> int | None:
        c = self.c
        for protocol in (c.SCARD_PROTOCOL_T1, c.SCARD_PROTOCOL_T0):
            if preferred & protocol:
                return int(protocol)
        return None

    def SCardConnect(
        self, hcontext: int, reader_name: str, share: int, preferred: int
    ) -> list[Any]:
        c = self.c
        with self.lock:
            if hcontext not in self._contexts:
                return [c.SCARD_E_INVALID_HANDLE, 0, 0]
            reader = self.readers.get(str(reader_name))
            if reader is None:
                return [c.SCARD_E_UNKNOWN_READER, 0, 0]
            direct = share == c.SCARD_SHARE_DIRECT
            protocol = self._protocol(preferred)
            if protocol is None and not direct:
                return [c.SCARD_E_PROTO_MISMATCH, 0, 0]
            if not reader.inserted and not direct:
                return [c.SCARD_E_NO_SMARTCARD, 0, 0]
            others = self.cards_in(reader)
            if any(h.share == c.SCARD_SHARE_EXCLUSIVE for h in others) or (
                others and share == c.SCARD_SHARE_EXCLUSIVE
            ):
                return [c.SCARD_E_SHARING_VIOLATION, 0, 0]
            if reader.inserted and not reader.card.powered:
                reader.card.power_on()
            handle = next(_handles)
            self._cards[handle] = _CardHandle(hcontext, reader, share, protocol or 0)
            self.lock.notify_all()  # the reader is in use now
            return [c.SCARD_S_SUCCESS, handle, protocol or 0]

    def _card(self, hcard: int) -> tuple[_CardHandle | None, int]:
        """The handle's state and the code a call on it answers first (success, or why not)."""
        c = self.c
        handle = self._cards.get(hcard)
        if handle is None:
            return None, int(c.SCARD_E_INVALID_HANDLE)
        if handle.removed or not handle.reader.inserted:
            return handle, int(c.SCARD_W_REMOVED_CARD)
        if handle.was_reset:
            handle.was_reset = False
            return handle, int(c.SCARD_W_RESET_CARD)
        return handle, int(c.SCARD_S_SUCCESS)

    def _dispose(self, reader: VirtualReader, disposition: int, by: _CardHandle) -> None:
        c = self.c
        if disposition == c.SCARD_RESET_CARD and reader.inserted:
            reader.card.reset()
            self._mark_reset(reader, by)
        elif disposition in (c.SCARD_UNPOWER_CARD, c.SCARD_EJECT_CARD):
            reader.card.power_off()
            self._mark_reset(reader, by)

    def _mark_reset(self, reader: VirtualReader, by: _CardHandle) -> None:
        for other in self.cards_in(reader):
            if other is not by:
                other.was_reset = True

    def _drop(self, hcard: int, disposition: int) -> None:
        handle = self._cards.pop(hcard)
        reader = handle.reader
        if self._transaction_owner.get(reader.name) == hcard:
            del self._transaction_owner[reader.name]
        self._dispose(reader, disposition, handle)
        if not self.cards_in(reader):
            reader.card.power_off()  # pcscd powers a card off when nobody holds it

    def SCardDisconnect(self, hcard: int, disposition: int) -> int:
        with self.lock:
            if hcard not in self._cards:
                return int(self.c.SCARD_E_INVALID_HANDLE)
            self._drop(hcard, disposition)
            self.lock.notify_all()
            return int(self.c.SCARD_S_SUCCESS)

    def SCardReconnect(
        self, hcard: int, share: int, preferred: int, initialization: int
    ) -> list[Any]:
        c = self.c
        with self.lock:
            handle = self._cards.get(hcard)
            if handle is None:
                return [c.SCARD_E_INVALID_HANDLE, 0]
            reader = handle.reader
            if not reader.inserted:
                return [c.SCARD_W_REMOVED_CARD, 0]
            protocol = self._protocol(preferred)
            if protocol is None:
                return [c.SCARD_E_PROTO_MISMATCH, 0]
            others = [h for h in self.cards_in(reader) if h is not handle]
            if share == c.SCARD_SHARE_EXCLUSIVE and others:
                return [c.SCARD_E_SHARING_VIOLATION, 0]
            if not handle.removed:
                self._dispose(reader, initialization, handle)
            # A re-inserted or torn card is powered up anew; one that other handles
            # powered up since is theirs as it is (pcsc-lite resets only on request).
            if not reader.card.powered:
                reader.card.power_on()
            handle.removed = handle.was_reset = False
            handle.share, handle.protocol = share, protocol
            self.lock.notify_all()
            return [c.SCARD_S_SUCCESS, protocol]

    def SCardStatus(self, hcard: int) -> list[Any]:
        with self.lock:
            handle, code = self._card(hcard)
            if handle is None or code != self.c.SCARD_S_SUCCESS:
                name = handle.reader.name if handle else ""
                return [code, name, _STATUS_ABSENT, 0, []]
            atr = list(handle.reader.card.atr)
            return [code, handle.reader.name, _STATUS_SPECIFIC, handle.protocol, atr]

    def _wait_for_transaction(self, handle: _CardHandle, hcard: int) -> None:
        name = handle.reader.name
        while self._transaction_owner.get(name, hcard) != hcard and not self.closed:
            self.lock.wait()

    def SCardBeginTransaction(self, hcard: int) -> int:
        with self.lock:
            handle, code = self._card(hcard)
            if handle is None or code != self.c.SCARD_S_SUCCESS:
                return code
            self._wait_for_transaction(handle, hcard)
            self._transaction_owner[handle.reader.name] = hcard
            handle.transactions += 1
            return int(self.c.SCARD_S_SUCCESS)

    def SCardEndTransaction(self, hcard: int, disposition: int) -> int:
        with self.lock:
            handle, code = self._card(hcard)
            if handle is None or code != self.c.SCARD_S_SUCCESS:
                return code
            if self._transaction_owner.get(handle.reader.name) != hcard:
                return int(self.c.SCARD_E_NOT_TRANSACTED)
            handle.transactions -= 1
            if handle.transactions <= 0:
                handle.transactions = 0
                del self._transaction_owner[handle.reader.name]
            self._dispose(handle.reader, disposition, handle)
            self.lock.notify_all()
            return int(self.c.SCARD_S_SUCCESS)

    def SCardTransmit(self, hcard: int, pci: Any, apdu: list[int]) -> list[Any]:
        c = self.c
        with self.lock:
            handle, code = self._card(hcard)
            if handle is None or code != c.SCARD_S_SUCCESS:
                return [code, []]
            if handle.share == c.SCARD_SHARE_DIRECT and not handle.protocol:
                return [c.SCARD_E_PROTO_MISMATCH, []]
            self._wait_for_transaction(handle, hcard)
            try:
                command = bytes(apdu)
            except (TypeError, ValueError):
                return [c.SCARD_E_INVALID_PARAMETER, []]
            if len(command) < 4:
                return [c.SCARD_E_INVALID_PARAMETER, []]
            card = handle.reader.card
            try:
                if not card.powered:
                    raise CardPoweredOff("card is not powered")
                response = card.transmit(command)
            except CardPoweredOff:
                # Power vanished mid-command (a tearing fault): to the app the card went
                # away during the exchange, as vpcd reports a card whose socket died.
                handle.removed = True
                return [c.SCARD_E_NOT_TRANSACTED, []]
            return [c.SCARD_S_SUCCESS, list(response)]

    def SCardControl(self, hcard: int, code: int, data: list[int]) -> list[Any]:
        with self.lock:
            handle, result = self._card(hcard)
            return [result if handle is None else self.c.SCARD_E_UNSUPPORTED_FEATURE, []]

    def SCardGetAttrib(self, hcard: int, attribute: int) -> list[Any]:
        c = self.c
        with self.lock:
            handle, code = self._card(hcard)
            if handle is None or code != c.SCARD_S_SUCCESS:
                return [code, []]
            if attribute == c.SCARD_ATTR_ATR_STRING:
                return [c.SCARD_S_SUCCESS, list(handle.reader.card.atr)]
            if attribute == c.SCARD_ATTR_DEVICE_FRIENDLY_NAME_A:
                return [c.SCARD_S_SUCCESS, list(handle.reader.name.encode() + b"\0")]
            return [c.SCARD_E_UNSUPPORTED_FEATURE, []]

    def SCardSetAttrib(self, hcard: int, attribute: int, value: list[int]) -> int:
        with self.lock:
            handle, code = self._card(hcard)
            return code if handle is None else int(self.c.SCARD_E_UNSUPPORTED_FEATURE)
