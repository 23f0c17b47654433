"""Reader apps: a Mynaportal-style login, an e-Tax-style signer, and their bad habits.

An app takes what the user typed, may transform it (:class:`Habits`) and reports what it
*shows*: the message a user would read. Apps note what they showed in the trace (never the
typed value) so the forensics can compare it with what the card said.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from emulator.grammar import CommandApdu
from emulator.pins import SPECS
from emulator.protocol import HOME, Pin
from harness.errors import ApduError, NoSuchFileError, PinBlockedError, WrongPinError
from harness.sessions import JpkiSession, JukiSession, Session, TextSession
from harness.sessions.base import INS_VERIFY, P2_CURRENT_EF, PinStatus, status_from_sw
from harness.sessions.jpki import verify_signature
from harness.trace.recorder import note
from harness.transport import CardRemovedError, Transport

SHOWN_OK = "logged in"
SHOWN_SIGNED = "signed"
SHOWN_LOCKED = "PIN locked: re-set it at the counter or via the smartphone app"
SHOWN_NO_PIN_CARD = "this card has no PIN-based login or signing (face-authentication card)"
SHOWN_REMOVED = "card lost: hold it still and try again"
SHOWN_IDENTITY_OK = "identity confirmed"
SHOWN_CHECK_LOCKED = "check number locked: the municipal counter can unblock it"
SHOWN_TAMPERED = "the card data does not verify"
FULL_WIDTH_OFFSET = 0xFEE0  # '０' - '0'


def wrong_pin(tries: int) -> str:
    """What an app shows after a wrong entry with *tries* left."""
    return f"wrong PIN, {tries} {'try' if tries == 1 else 'tries'} left"


def wrong_check_number(tries: int) -> str:
    """What an identity-verification app shows after a wrong check number."""
    return f"wrong check number, {tries} {'try' if tries == 1 else 'tries'} left"


def lowercase(typed: str) -> str:
    return typed.lower()


def full_width_digits(typed: str) -> str:
    """Digits as a Japanese input method in full-width mode produces them (１２３)."""
    return "".join(chr(ord(c) + FULL_WIDTH_OFFSET) if "0" <= c <= "9" else c for c in typed)


def trailing_newline(typed: str) -> str:
    return typed + "\n"


@dataclass(frozen=True)
class Habits:
    """How an app mistreats input and status. The default app behaves."""

    transform: Callable[[str], str] | None = None
    auto_retries: int = 0  # re-sends a failed VERIFY this many times, unasked
    naive_status: bool = False  # any non-63Cx answer to a status query = "0 tries (locked)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the app showed, and what it learnt about the counter."""

    ok: bool
    shown: str
    tries_left: int | None = None


class ReaderApp:
    """Common behaviour of the reader apps."""

    NAME = "app"

    def __init__(
        self, transport: Transport, habits: Habits | None = None, rng: random.Random | None = None
    ) -> None:
        self.transport = transport
        self.habits = habits or Habits()
        self.rng = rng or random.Random()

    def _send_value(self, typed: str) -> str:
        fn = self.habits.transform
        return fn(typed) if fn else typed

    def _verify(self, verify: Callable[[str], None], typed: str) -> None:
        """VERIFY as this app does it, including its automatic retries."""
        value = self._send_value(typed)
        for attempt in range(self.habits.auto_retries + 1):
            try:
                verify(value)
                return
            except WrongPinError as exc:
                if attempt == self.habits.auto_retries or exc.blocked:
                    raise

    def show(self, outcome: Outcome) -> Outcome:
        note(self.transport, self.NAME, "shown", text=outcome.shown)
        return outcome

    def status(self, session: Session, pin: str) -> Outcome:
        """Ask the card for a counter (empty VERIFY) and show it, naively or correctly."""
        session.select_ef(HOME[Pin(pin)].ef)
        _, sw = session.send(CommandApdu(0x00, INS_VERIFY, 0x00, P2_CURRENT_EF))
        if self.habits.naive_status:
            shown = sw & 0x0F if sw & 0xFFF0 == 0x63C0 else 0  # "not 63Cx, so 0 tries"
        else:
            st = status_from_sw(pin, SPECS[pin].max_tries, sw)
            shown = st.tries_left if st.tries_left is not None else st.max_tries
            if not st.usable:
                shown = 0
        note(self.transport, self.NAME, "pin-status", pin=pin, app=session.NAME, tries_shown=shown)
        text = "locked" if shown == 0 else f"{shown} {'try' if shown == 1 else 'tries'} left"
        return self.show(Outcome(shown > 0, text, shown))

    def card_signature(
        self, typed: str, document: bytes
    ) -> tuple[x509.Certificate, bytes] | Outcome:
        """The signing password *typed*, then the signing certificate and the card's signature
        over *document*; or the outcome shown when the card refused or the signature does not
        verify."""
        jpki = JpkiSession(self.transport)
        try:
            jpki.select_ef(HOME[Pin.SIGN].ef)  # no signing password at all: a face-auth card
            self._verify(lambda v: jpki.verify("sign", v), typed)
            cert = jpki.certificate("sign")
            signature = jpki.sign_message("sign", document)
        except (ApduError, CardRemovedError) as exc:
            return self.failure(exc, lambda: jpki.pin_status("sign"))
        if not verify_signature(cert, document, signature):
            return self.show(Outcome(False, "signature does not verify"))
        return cert, signature

    def failure(self, exc: Exception, status: Callable[[], PinStatus] | None = None) -> Outcome:
        if isinstance(exc, CardRemovedError):
            self.transport.reset()  # the phone finds the card again
            return self.show(Outcome(False, SHOWN_REMOVED))
        if isinstance(exc, WrongPinError):
            if exc.blocked:
                return self.show(Outcome(False, SHOWN_LOCKED, 0))
            return self.show(Outcome(False, wrong_pin(exc.tries_left), exc.tries_left))
        if isinstance(exc, PinBlockedError) and status is not None:
            st = status()
            if not st.usable:
                return self.show(Outcome(False, SHOWN_NO_PIN_CARD))
            return self.show(Outcome(False, SHOWN_LOCKED, 0))
        if isinstance(exc, NoSuchFileError):
            return self.show(Outcome(False, SHOWN_NO_PIN_CARD))
        if isinstance(exc, ApduError):
            return self.show(Outcome(False, f"card error {exc}"))
        raise exc


class MynaportalLogin(ReaderApp):
    """Login: auth PIN, then a signature over the server's challenge, checked with the cert."""

    NAME = "login-app"

    def login(self, typed: str) -> Outcome:
        self.session = jpki = JpkiSession(self.transport)
        try:
            cert = jpki.certificate("auth")
            self._verify(lambda v: jpki.verify("auth", v), typed)
            challenge = self.rng.randbytes(32)
            signature = jpki.sign_message("auth", challenge)
        except (ApduError, CardRemovedError) as exc:
            return self.failure(exc, lambda: jpki.pin_status("auth"))
        if not verify_signature(cert, challenge, signature):
            return self.show(Outcome(False, "login failed: signature does not match the card"))
        return self.show(Outcome(True, SHOWN_OK))

    session: JpkiSession | None = None

    def pin_status(self) -> Outcome:
        """The auth counter, asked in the session of the last login (no re-select)."""
        return self.status(self.session or JpkiSession(self.transport), "auth")


class ETaxSigner(ReaderApp):
    """Signer: signing password, the signing certificate, a signature over the document."""

    NAME = "signer-app"

    def sign(self, typed: str, document: bytes) -> Outcome:
        signed = self.card_signature(typed, document)
        if isinstance(signed, Outcome):
            return signed
        return self.show(Outcome(True, SHOWN_SIGNED))


class CardInfoApp(ReaderApp):
    """Reads the basic four attributes with "the" 4-digit PIN, trying every application.

    The habit behind one phantom lockout: the same value is verified against the JPKI auth
    PIN, then Juki, then the text AP, until one accepts it.
    """

    NAME = "card-info-app"

    def read(self, typed: str) -> Outcome:
        t = self.transport
        for pin in ("auth", "juki", "helper"):
            session: Session = (
                JpkiSession(t)
                if pin == "auth"
                else JukiSession(t)
                if pin == "juki"
                else TextSession(t)
            )
            try:
                self._verify(functools.partial(_verify_any, session, pin), typed)
            except WrongPinError:
                continue
            except (ApduError, CardRemovedError) as exc:
                return self.failure(exc)
            if isinstance(session, TextSession):
                session.basic_four()
                return self.show(Outcome(True, "read the card information"))
            return self.show(Outcome(False, "could not read the card information"))
        return self.show(Outcome(False, "wrong PIN"))


class IdentityVerificationApp(ReaderApp):
    """An identity-verification (本人確認) app: the user types check number B from the card
    face -- birth date, expiry year, security code; no 4-digit PIN -- and the app reads the
    basic four attributes from the text AP and checks them against the integrity record
    (EF 0003, signed by the key certified in EF 0004)."""

    NAME = "id-check-app"

    def check(self, typed_b: str) -> Outcome:
        text = TextSession(self.transport)
        try:
            self._verify(lambda v: text.verify_check_number("B", v), typed_b)
            text.basic_four()
            integrity = text.integrity(with_my_number=False)
        except WrongPinError as exc:
            if exc.blocked:
                return self.show(Outcome(False, SHOWN_CHECK_LOCKED, 0))
            return self.show(Outcome(False, wrong_check_number(exc.tries_left), exc.tries_left))
        except PinBlockedError:
            return self.show(Outcome(False, SHOWN_CHECK_LOCKED, 0))
        except (ApduError, CardRemovedError) as exc:
            return self.failure(exc)
        if not integrity.ok:
            return self.show(Outcome(False, SHOWN_TAMPERED))
        return self.show(Outcome(True, SHOWN_IDENTITY_OK))


def _verify_any(session: Session, pin: str, value: str) -> None:
    if isinstance(session, JpkiSession):
        session.verify(pin, value)
    else:
        session.verify(value)  # type: ignore[attr-defined]
