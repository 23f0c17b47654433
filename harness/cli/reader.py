"""Opening the PC/SC reader a command names (``--reader NAME``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.cli.errors import UsageError
from harness.optional import require_pyscard
from harness.transport import Transport, TransportError

if TYPE_CHECKING:  # a type only: run and status need not import the tap
    from harness.hil.tap import PresenceWatch


def _need_pyscard(what: str) -> None:
    """``UsageError`` with the one line saying *what* needs pyscard, when it is missing.

    Each caller then imports ``harness.hil.pcsc`` in the function, not at the top: it needs
    pyscard, which every other command (and the help) does without.
    """
    try:
        require_pyscard(what)
    except ImportError as exc:  # PyscardMissingError: the one line
        raise UsageError(str(exc)) from None


def open_reader(name: str) -> Transport:
    """A PC/SC transport to reader *name* (a physical card as far as the harness knows)."""
    _need_pyscard("--reader")
    from harness.hil.pcsc import PcscTransport

    try:
        return PcscTransport(name)
    except TransportError as exc:
        raise UsageError(str(exc)) from None


def open_tap_reader(name: str) -> tuple[Transport, PresenceWatch, list[str]]:
    """For ``myna-hil tap``: reader *name* held exclusively and not connected yet (it may be
    empty), a watch on its card presence, and every reader pcscd lists."""
    _need_pyscard("tap")
    from harness.hil.pcsc import PcscTransport, ReaderPresence, list_readers

    try:
        transport = PcscTransport(name, exclusive=True, connect=False)
    except TransportError as exc:
        raise UsageError(str(exc)) from None
    try:
        return transport, ReaderPresence(transport.reader), list_readers()
    except TransportError as exc:
        transport.close()
        raise UsageError(str(exc)) from None


def watch_reader(name: str) -> PresenceWatch:
    """A watch on the card presence of reader *name* (exact name or unique substring)."""
    _need_pyscard("tap")
    from harness.hil.pcsc import ReaderPresence

    try:
        return ReaderPresence(name)
    except TransportError as exc:
        raise UsageError(str(exc)) from None
