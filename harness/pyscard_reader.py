"""A pyscard reader in this process: an app written against pyscard talks to an emulator
card with no pcscd, no vpcd and no root.

::

    from harness.pyscard_reader import pyscard_reader

    with pyscard_reader() as reader:          # a fresh card; or pyscard_reader(my_card)
        app.main()                            # its readers() lists reader.name
        reader.card.tries_left("auth")        # the card's controls (an InProcessCard)
        reader.remove(); reader.insert()      # what CardMonitor observers see

Where it hooks: pyscard's whole Python API (``System.readers``, ``Reader``,
``CardConnection``, ``CardRequest``, ``CardMonitor``, ``ReaderMonitor``, and the
``smartcard.scard`` functions an app may call itself) reaches PC/SC through the functions of
one extension module, ``smartcard.scard._scard``, looked up at every call. For the duration
those functions are replaced by :class:`~harness.virtual_pcsc.VirtualPcsc`'s, so names an
app bound at import time (``from smartcard.System import readers``) need no patching.

Real readers are hidden meanwhile: a new context lists only the virtual readers, so an app
that takes the first reader cannot reach a physical card (docs/safety.md). A context the app
opened before the reader was installed keeps talking to pcscd.

pyscard is optional (``pip install 'myna-hil[pcsc]'``): this module imports it only when a
reader is installed; without it, :class:`~harness.optional.PyscardMissingError` says so in
one line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from harness.cards import new_card
from harness.controls import InProcessCard
from harness.optional import PyscardMissingError, require_pyscard
from harness.virtual_pcsc import VirtualPcsc, VirtualReader, is_virtual_handle

__all__ = [
    "DEFAULT_READER",
    "InProcessReader",
    "PyscardMissingError",
    "install",
    "pyscard_reader",
    "require_pyscard",
]

#: The virtual reader's name: pcsc-lite's "<name> <index> <slot>" form, and not vpcd's.
DEFAULT_READER = "myna-hil In-Process Reader 00 00"

#: The ``SCard*`` functions of ``_scard`` the service answers for its own handles.
_HOOKED = (
    "SCardEstablishContext",
    "SCardReleaseContext",
    "SCardIsValidContext",
    "SCardCancel",
    "SCardListReaders",
    "SCardListReaderGroups",
    "SCardGetStatusChange",
    "SCardConnect",
    "SCardReconnect",
    "SCardDisconnect",
    "SCardStatus",
    "SCardBeginTransaction",
    "SCardEndTransaction",
    "SCardTransmit",
    "SCardControl",
    "SCardGetAttrib",
    "SCardSetAttrib",
)
#: Functions that take no handle: always the service's while one is installed.
_NO_HANDLE = {"SCardEstablishContext"}
#: What a call on a handle of a service that has ended answers: pcsc-lite's answer once its
#: daemon has gone (pyscard's CardRequest then opens a new context), and success for the
#: calls that let go of a handle, so an app's connection objects that outlive the reader
#: (their ``__del__`` releases the context) end quietly.
_LET_GO = {"SCardReleaseContext", "SCardDisconnect", "SCardEndTransaction", "SCardCancel"}
_SHAPES: dict[str, tuple[Any, ...]] = {
    "SCardListReaders": ([],),
    "SCardListReaderGroups": ([],),
    "SCardGetStatusChange": ([],),
    "SCardConnect": (0, 0),
    "SCardReconnect": (0,),
    "SCardStatus": ("", 0, 0, []),
    "SCardTransmit": ([],),
    "SCardControl": ([],),
    "SCardGetAttrib": ([],),
}


def _extension(scard: ModuleType) -> ModuleType:
    """The module whose functions pyscard's Python layer calls (``smartcard.scard._scard``)."""
    wrappers = getattr(scard, "scard", None)  # smartcard.scard.scard, the SWIG wrappers
    ext = getattr(wrappers, "_scard", None)
    if not isinstance(ext, ModuleType) or not all(hasattr(ext, n) for n in _HOOKED):
        raise RuntimeError(
            "this pyscard has no smartcard.scard._scard extension with the SCard* functions; "
            "the in-process reader supports pyscard 2.x"
        )
    return ext


class _Router:
    """The hooks in ``_scard``: calls go to the installed service (for its handles and new
    contexts) or to pyscard's own functions. Installed once per process and left in place
    (with no service they only pass calls on), so handles that outlive a reader still meet
    an answer instead of the real library's "invalid handle" at garbage collection."""

    def __init__(self, ext: ModuleType, consts: Any) -> None:
        self.consts = consts
        self.service: VirtualPcsc | None = None
        self.originals = {name: getattr(ext, name) for name in _HOOKED}
        for name, real in self.originals.items():
            setattr(ext, name, self._dispatcher(name, real))

    def _stale(self, name: str) -> Any:
        c = self.consts
        if name in _LET_GO:
            return c.SCARD_S_SUCCESS
        if name in _SHAPES:
            return [c.SCARD_E_NO_SERVICE, *_SHAPES[name]]
        return c.SCARD_E_NO_SERVICE

    def _dispatcher(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        if name in _NO_HANDLE:

            def establish(*args: Any) -> Any:
                service = self.service
                return getattr(service, name)(*args) if service is not None else real(*args)

            establish.__name__ = name
            return establish

        def call(handle: Any, *args: Any) -> Any:
            service = self.service
            if service is not None and service.owns(handle):
                return getattr(service, name)(handle, *args)
            if is_virtual_handle(handle):
                return self._stale(name)
            return real(handle, *args)

        call.__name__ = name
        return call


_routers: dict[int, _Router] = {}
_install_lock = threading.Lock()


@contextmanager
def install(service: VirtualPcsc, scard: ModuleType) -> Iterator[VirtualPcsc]:
    """Answer pyscard's PC/SC calls with *service* for the duration (one at a time)."""
    ext = _extension(scard)
    with _install_lock:
        router = _routers.get(id(ext))
        if router is None:
            router = _routers[id(ext)] = _Router(ext, scard)
        if router.service is not None:
            raise RuntimeError(
                "an in-process pyscard reader is installed already; add readers to it "
                "(InProcessReader.add) instead of nesting"
            )
        router.service = service
    try:
        yield service
    finally:
        with _install_lock:
            router.service = None
        service.close()


class InProcessReader:
    """The installed virtual reader: its ``name``, the card's controls (``card``), and
    ``insert()`` / ``remove()``. :meth:`add` puts more cards in more readers."""

    def __init__(self, service: VirtualPcsc, reader: VirtualReader, card: InProcessCard):
        self.service = service
        self.reader = reader
        self.card = card
        self.name = reader.name

    def __repr__(self) -> str:
        return f"InProcessReader({self.name!r})"

    def insert(self) -> None:
        self.reader.insert()

    def remove(self) -> None:
        self.reader.remove()

    @property
    def inserted(self) -> bool:
        return self.reader.inserted

    def add(self, card: InProcessCard | None = None, name: str | None = None) -> InProcessReader:
        """Another reader (``... 01 00``, ``... 02 00``, ...) with *card* or a fresh one."""
        card = card if card is not None else InProcessCard(new_card("standard"))
        index = len(self.service.readers)
        default = DEFAULT_READER.replace(" 00 00", f" {index:02d} 00")
        reader = VirtualReader(name or default, card.card)
        self.service.add_reader(reader)
        return InProcessReader(self.service, reader, card)


@contextmanager
def pyscard_reader(
    card: InProcessCard | None = None,
    *,
    name: str = DEFAULT_READER,
    inserted: bool = True,
) -> Iterator[InProcessReader]:
    """A virtual reader holding *card* (a fresh standard card if none) in pyscard's
    ``readers()`` for the duration, and gone after; real readers hidden meanwhile."""
    scard = require_pyscard("the in-process pyscard reader")  # PyscardMissingError
    card = card if card is not None else InProcessCard(new_card("standard"))
    reader = VirtualReader(name, card.card, inserted=inserted)
    with install(VirtualPcsc(scard, [reader]), scard) as service:
        yield InProcessReader(service, reader, card)
