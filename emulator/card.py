"""The card operating system: power, ATR, selection, security state and the one dispatcher.

``Card.transmit`` is the whole card as the outside world sees it: bytes in, bytes out. No
exception leaves it for any byte string; every failure is an ISO status word.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from emulator import commands, pins
from emulator.apps import build_applications
from emulator.errors import CardPoweredOff, SwError
from emulator.files import Application, Ef, Handler
from emulator.grammar import SW, ApduFormatError, CommandApdu
from emulator.profiles import ATRS, DEFAULT_ATR_FORM, FACE_AUTH, PROFILES, STANDARD
from emulator.state import CardState, FileStore, MemoryStore, PinRecord, Quirks, Store

logger = logging.getLogger(__name__)

_SW_WRONG_LENGTH = SW.WRONG_LENGTH.to_bytes(2, "big")
_SW_UNKNOWN = SW.NO_PRECISE_DIAGNOSIS.to_bytes(2, "big")

#: Interindustry (CLA 0x) commands, by INS.
_ISO_COMMANDS: dict[int, Handler] = {
    0xA4: commands.select,
    0x20: commands.verify,
    0x24: commands.change_reference_data,
    0xB0: commands.read_binary,
    0xCA: commands.get_data,
    0x84: commands.get_challenge,
    0x82: commands.external_authenticate,
    0x2C: commands.reset_retry_counter,
}


@dataclass
class Session:
    """Volatile state: lost on power-off, reset, and (but for the selection) on SELECT by AID."""

    app: Application | None = None
    ef: Ef | None = None
    verified: set[str] = field(default_factory=set)
    issuer_authenticated: bool = False
    challenge: bytes | None = None


@dataclass
class Faults:
    """Fault injection for tests: simulated power loss ("tearing")."""

    #: Lose power on the next N VERIFYs with data, right after the decrement is durable.
    tear_after_decrement: int = 0


class Card:
    """A virtual My Number Card over a :class:`~emulator.state.Store`."""

    def __init__(self, state: CardState, store: Store | None = None) -> None:
        self.state = state
        self.store: Store = store or MemoryStore()
        self.faults = Faults()
        self.powered = False
        self.session = Session()
        self.applications: dict[bytes, Application] = {}
        self._rebuild()

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Card:
        """A durable card from an existing state file (``StateError`` if unusable)."""
        store = FileStore(path)
        return cls(store.load(), store)

    @classmethod
    def memory(cls, profile: str = STANDARD, **kwargs: object) -> Card:
        """A fresh card that lives in memory only (generates keys: about half a second)."""
        from emulator.personalise import new_state

        return cls(new_state(profile=profile, **kwargs))  # type: ignore[arg-type]

    @classmethod
    def create(cls, path: str | os.PathLike[str], state: CardState) -> Card:
        """Write *state* to a new file at *path* and open it durably."""
        store = FileStore(path)
        store.commit(state)
        return cls(state, store)

    def _rebuild(self) -> None:
        """Recompute the file model after a change of profile, keys or holder data."""
        self.applications = build_applications(self.state)
        self.session = Session()

    # --- power --------------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return ATRS[self.state.atr_form]

    def power_on(self) -> bytes:
        self.powered = True
        self.session = Session()
        return self.atr

    def power_off(self) -> None:
        self.powered = False
        self.session = Session()

    def reset(self) -> bytes:
        return self.power_on()

    def close(self) -> None:
        """Power off. Every change is already durable, so there is nothing to flush."""
        self.power_off()

    # --- the dispatcher -----------------------------------------------------------------------

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response APDU (data + SW1 SW2)."""
        if not self.powered:
            raise CardPoweredOff("card is not powered; power it on first")
        try:
            apdu = CommandApdu.from_bytes(raw)
        except ApduFormatError:
            return _SW_WRONG_LENGTH
        try:
            return self._dispatch(apdu)
        except SwError as exc:
            return exc.response()
        except CardPoweredOff:
            raise
        except Exception:
            # A bug must not take the card down: answer 6F00 and keep serving.
            logger.exception("internal error on %r", apdu)
            return _SW_UNKNOWN

    def _dispatch(self, apdu: CommandApdu) -> bytes:
        cla = apdu.cla
        if cla & 0xC0 == 0x40:
            # Further interindustry class (ISO 7816-4 §5.4.1): logical channels 4..19, never 0.
            raise SwError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla == 0xFF or cla & 0x60:
            raise SwError(SW.CLA_NOT_SUPPORTED)
        if cla & 0x03:
            raise SwError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla & 0x0C:
            raise SwError(SW.SECURE_MESSAGING_NOT_SUPPORTED)
        if cla & 0x10:
            raise SwError(SW.CHAINING_NOT_SUPPORTED)
        if cla & 0x80:
            app = self.session.app
            handler = app.commands.get((0x80, apdu.ins)) if app else None
            if handler is None:
                known = any((0x80, apdu.ins) in a.commands for a in self.applications.values())
                raise SwError(SW.CONDITIONS_NOT_SATISFIED if known else SW.INS_NOT_SUPPORTED)
            return handler(self, apdu)
        iso = _ISO_COMMANDS.get(apdu.ins)
        if iso is None:
            raise SwError(SW.INS_NOT_SUPPORTED)
        return iso(self, apdu)

    # --- durable changes ----------------------------------------------------------------------

    def commit(self) -> None:
        """Make the current state durable before the response leaves the card."""
        self.store.commit(self.state)

    # --- administration (test controls; not reachable by APDU) ---------------------------------

    def pin_record(self, name: str) -> PinRecord:
        try:
            return self.state.pins[name]
        except KeyError:
            raise KeyError(f"this {self.state.profile} card has no {name!r} PIN") from None

    def set_pin(self, name: str, value: str) -> None:
        """Set a PIN's value and restore its counter (as a municipal counter would)."""
        spec = pins.SPECS[name]
        raw = value.encode("ascii", "replace")
        problem = spec.violation(raw)
        if problem:
            raise ValueError(problem)
        pins.set_value(self.pin_record(name), raw)
        self.commit()

    def set_tries(self, name: str, tries: int) -> None:
        rec = self.pin_record(name)
        if not 0 <= tries <= rec.max_tries:
            raise ValueError(f"tries for {name!r} must be 0..{rec.max_tries}")
        rec.tries_left = tries
        self.commit()

    def block(self, name: str) -> None:
        self.set_tries(name, 0)

    def set_quirks(self, **flags: bool) -> None:
        self.state.quirks = Quirks(**{**self.state.quirks.__dict__, **flags})
        self.commit()

    def set_atr_form(self, form: str) -> None:
        if form not in ATRS:
            raise ValueError(f"unknown ATR form {form!r}; known: {', '.join(ATRS)}")
        self.state.atr_form = form
        self.commit()

    def set_profile(
        self, profile: str, *, auth: str | None = None, sign: str | None = None
    ) -> None:
        """Switch profile, re-issuing or revoking the signing key ([model] counter procedure)."""
        from emulator.personalise import apply_profile

        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        apply_profile(self.state, profile, auth=auth, sign=sign)
        self.commit()
        self._rebuild()


__all__ = ["DEFAULT_ATR_FORM", "FACE_AUTH", "STANDARD", "Card", "CardPoweredOff"]
