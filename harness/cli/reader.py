"""Opening the PC/SC reader a command names (``--reader NAME``)."""

from __future__ import annotations

from harness.cli.errors import UsageError
from harness.optional import require_pyscard
from harness.transport import Transport, TransportError


def open_reader(name: str) -> Transport:
    """A PC/SC transport to reader *name* (a physical card as far as the harness knows)."""
    try:
        # Optional dependency: harness.hil.pcsc needs pyscard, which every other command
        # (and the help) does without.
        require_pyscard("--reader")
        from harness.hil.pcsc import PcscTransport
    except ImportError as exc:  # PyscardMissingError: the one line
        raise UsageError(str(exc)) from None
    try:
        return PcscTransport(name)
    except TransportError as exc:
        raise UsageError(str(exc)) from None
