"""Hardware in the loop: one card in one named reader, identified, guarded and recorded.

Layers, bottom up: the PC/SC transport; a :class:`~harness.trace.recorder.RecordingTransport`
(the *wire* trace: every APDU that reached the card, secrets always redacted, with its
latency); the guard (:mod:`harness.hil.guard`) under the permit the card's identity earned. The
HIL suite (``tests/hil``, ``tox -e hil``) talks only to :attr:`HilCard.transport`.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.hil.guard import IDENTIFYING, GuardedTransport, Interlocks, Permit, authorise
from harness.hil.identity import CardIdentity, identify
from harness.sessions.jpki import JpkiSession, verify_signature
from harness.trace.recorder import RecordingTransport
from harness.transport import Transport, TransportError

if TYPE_CHECKING:
    from harness.controls import CardControls
    from harness.scenarios.runner import Opener, Unit


__all__ = [
    "ENV_AUTH_PIN",
    "ENV_READER",
    "HilCard",
    "HilSetupError",
    "PinRefusedError",
    "Secret",
    "owner_pin",
]

ENV_READER = "MYNA_READER"
ENV_AUTH_PIN = "MYNA_AUTH_PIN"


class HilSetupError(Exception):
    """No usable card: the message says what was looked for and what was found."""


class PinRefusedError(Exception):
    """The owner's PIN was not sent: too few tries left (never holds the PIN)."""


class Secret:
    """A PIN held for one VERIFY; its ``str`` / ``repr`` never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__


def has_terminal() -> bool:
    """Whether a PIN prompt can reach a person: ``/dev/tty`` on POSIX (getpass reads it even
    when standard input is redirected), an interactive console on Windows (no ``/dev/tty``;
    getpass reads the console through msvcrt)."""
    if os.name == "nt":
        return sys.stdin is not None and sys.stdin.isatty()
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return False
    return True


def owner_pin(
    env: Mapping[str, str], *, prompt: bool, ask: Callable[[str], str] = getpass.getpass
) -> Secret | None:
    """The owner's auth PIN from ``MYNA_AUTH_PIN`` or, with *prompt*, from the terminal.

    ``None`` when neither is given: the PIN steps are then skipped. A prompt needs a
    terminal (``/dev/tty``); without one it is an error, never a silent skip.
    """
    value = env.get(ENV_AUTH_PIN)
    if value:
        return Secret(value)
    if not prompt:
        return None
    if not has_terminal():
        raise HilSetupError("--prompt-pin needs a terminal; set MYNA_AUTH_PIN instead")
    typed = ask("JPKI auth PIN (verified once, never stored): ")
    return Secret(typed) if typed else None


class _Borrowed(Transport):
    """The session's transport lent to a scenario run: closing it closes nothing."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name
        self.physical = inner.physical

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> bytes:
        return self.inner.transmit(apdu)

    def reset(self) -> bytes:
        return self.inner.reset()


@dataclass
class HilCard:
    """The card of a HIL run. Build with :meth:`connect`, then :meth:`authorise`."""

    reader: str
    wire: RecordingTransport
    interlocks: Interlocks
    identity: CardIdentity | None = None
    permit: Permit = IDENTIFYING
    transport: GuardedTransport = field(init=False)
    #: Why the run stopped early (card pulled, wrong card...), for the report.
    stopped: str | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.transport = GuardedTransport(self.wire, self.permit, close_inner=False)

    @classmethod
    def connect(
        cls,
        reader: str,
        interlocks: Interlocks,
        open_transport: Callable[[str], Transport] | None = None,
    ) -> HilCard:
        """Open *reader* (exact name or unique substring); no APDU is sent yet."""
        opener = open_transport or _open_pcsc
        raw = opener(reader)
        name = raw.name.removeprefix("pcsc:")
        wire = RecordingTransport(raw, redact=True, meta={"hil": True, "reader": name})
        return cls(name, wire, interlocks)

    def authorise(self) -> None:
        """Identify the card (free reads) and install the permit its identity earns."""
        try:
            self.identity = identify(GuardedTransport(self.wire, IDENTIFYING, close_inner=False))
            self.permit = authorise(self.wire, self.interlocks, lambda _t: self._identity())
        except Exception as exc:
            self.stopped = str(exc)
            raise
        self.transport = GuardedTransport(self.wire, self.permit, close_inner=False)

    def _identity(self) -> CardIdentity:
        assert self.identity is not None
        return self.identity

    def opener(self) -> Opener:
        """For :func:`harness.scenarios.runner.run_unit`: the session's guarded transport."""

        def open_unit(unit: Unit) -> tuple[Transport, CardControls | None]:
            return _Borrowed(self.transport), None

        return open_unit

    def owner_pin_check(self, pin: Secret) -> str:
        """Verify the auth PIN once, sign a fresh challenge, check it with the certificate.

        Refuses (:class:`PinRefusedError`, nothing sent) when a wrong value would leave
        fewer tries than the floor; a wrong PIN raises ``WrongPinError`` and is not retried.
        """
        jpki = JpkiSession(self.transport)
        cert = jpki.certificate("auth")
        status = jpki.pin_status("auth")
        floor = self.permit.floor
        if status.tries_left is None or status.tries_left - 1 < floor:
            raise PinRefusedError(
                f"auth PIN not verified: {status.describe()}; a wrong value would leave fewer "
                f"than {floor} (earlier failures may be the owner's; --min-tries sets the floor)"
            )
        jpki.verify("auth", pin.reveal())
        challenge = secrets.token_bytes(32)
        signature = jpki.sign_message("auth", challenge)
        if not verify_signature(cert, challenge, signature):
            return "signature does NOT verify with the auth certificate"
        return "signature verifies with the auth certificate"

    def close(self) -> None:
        self.wire.close()


def _open_pcsc(reader: str) -> Transport:
    # Optional dependency: harness.hil.pcsc needs pyscard; a HilCard over another transport
    # (the tests' in-process stand-ins) does without it.
    from harness.hil.pcsc import NoCardError, PcscError, PcscTransport, list_readers

    try:
        return PcscTransport(reader)
    except NoCardError as exc:
        raise HilSetupError(f"looked for a card in reader {reader!r}: {exc}") from None
    except PcscError as exc:
        raise HilSetupError(f"looked for reader {reader!r}: {exc}") from None
    except TransportError as exc:  # pragma: no cover - other carriers
        found = ", ".join(repr(r) for r in list_readers()) or "none"
        raise HilSetupError(f"looked for reader {reader!r}: {exc}; readers: {found}") from None
