"""The card operating system: power, ATR, selection, security state and the one dispatcher.

``Card.transmit`` is the whole card as the outside world sees it: bytes in, bytes out. No
exception leaves it for any byte string; every failure is an ISO status word.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator import commands, pins
from emulator.apps import build_applications, mf
from emulator.errors import CardPoweredOff, SwError, status
from emulator.files import Application, Ef, Handler
from emulator.grammar import SW, ApduFormatError, CommandApdu
from emulator.personalise import apply_profile, new_state
from emulator.profiles import ATRS, DEFAULT_ATR_FORM, FACE_AUTH, PROFILES, STANDARD
from emulator.redact import has_secret_data, redact_command
from emulator.state import CardState, PinChange, PinRecord, Quirks
from emulator.store import DEFAULT_WAIT, MemoryStore, SqliteStore, Store, StoreError

logger = logging.getLogger(__name__)

_SW_WRONG_LENGTH = SW.WRONG_LENGTH.to_bytes(2, "big")
_SW_UNKNOWN = SW.NO_PRECISE_DIAGNOSIS.to_bytes(2, "big")
_SW_MEMORY_FAILURE = SW.MEMORY_FAILURE.to_bytes(2, "big")
_SW_INS_NOT_SUPPORTED = SW.INS_NOT_SUPPORTED.to_bytes(2, "big")

#: Commands parsed already, by their bytes (see :func:`_parse`), and how many it keeps.
_PARSED: dict[bytes, CommandApdu] = {}
_PARSED_MAX = 512
#: Longer commands (signature inputs, certificates written) are rarely repeated.
_PARSED_LONGEST = 32


def _parse(raw: bytes) -> CommandApdu:
    """``CommandApdu.from_bytes``, remembered for the short commands clients repeat (status
    queries, SELECTs, READ BINARYs): the same bytes are the same immutable command. Never a
    command whose data may be a PIN (:func:`~emulator.redact.has_secret_data`):
    no secret is kept after its command is answered."""
    if type(raw) is not bytes:  # a bytearray is not hashable
        return CommandApdu.from_bytes(raw)
    apdu = _PARSED.get(raw)
    if apdu is None:
        apdu = CommandApdu.from_bytes(raw)
        if len(raw) <= _PARSED_LONGEST and not has_secret_data(raw):
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[raw] = apdu
    return apdu


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
    0xB2: commands.read_record,
    0x88: commands.internal_authenticate,
}


#: Commands that answer 69FC under a secure-messaging class outside a session [card].
_SM_SESSION_INS = frozenset({0xB0, 0x20})


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
        self.store: Store = store or MemoryStore(state)
        self.faults = Faults()
        self.powered = False
        self.session = Session()
        self.applications: dict[bytes, Application] = {}
        #: GET DATA objects at MF level (docs/card.md#get-data), by P1P2.
        self.mf_objects: dict[int, bytes] = {}
        #: Why the last command could not be made durable (answered 6581), else ``None``.
        self.store_error: StoreError | None = None
        self._generation = self.store.generation()
        self._rebuild()

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, wait: float = DEFAULT_WAIT, read_only: bool = False
    ) -> Card:
        """A durable card from an existing card database (``StateError`` if unusable)."""
        store = SqliteStore.open(path, wait=wait, read_only=read_only)
        try:
            return cls(store.load(), store)
        except BaseException:
            store.close()
            raise

    @classmethod
    def memory(cls, profile: str = STANDARD, **kwargs: object) -> Card:
        """A fresh card that lives in memory only (generates keys: about half a second)."""
        return cls(new_state(profile=profile, **kwargs))  # type: ignore[arg-type]

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        state: CardState,
        *,
        force: bool = False,
        wait: float = DEFAULT_WAIT,
    ) -> Card:
        """Write *state* as a new card database at *path* and open it durably."""
        store = SqliteStore.create(path, state, force=force, wait=wait)
        try:
            return cls(store.load(), store)
        except BaseException:
            store.close()
            raise

    def reissue_in_memory(self, state: CardState) -> None:
        """Give an in-memory card a new *state*, keeping its parsed file model (tests reuse
        card objects: parsing the RSA keys costs ~50 ms). Same keys and holder only."""
        if not isinstance(self.store, MemoryStore):
            raise TypeError("only an in-memory card can be re-issued in place")
        self.power_off()
        self.state = state
        self.store = MemoryStore(state)
        self._generation = self.store.generation()
        self.faults = Faults()

    def _rebuild(self) -> None:
        """Recompute the file model after a change of profile, keys or holder data."""
        self.applications = build_applications(self.state)
        self.mf_objects = mf.objects(self.state)
        self.session = Session()

    # --- power --------------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return ATRS[self.state.atr_form]

    def power_on(self) -> bytes:
        # Another process may have re-issued the card (profile, keys, quirks) meanwhile.
        generation = self.store.generation()
        if generation != self._generation:
            self.state = self.store.load()
            self._generation = generation
            self._rebuild()
        self.powered = True
        self.session = Session()
        return self.atr

    def power_off(self) -> None:
        self.powered = False
        self.session = Session()

    def reset(self) -> bytes:
        return self.power_on()

    def close(self) -> None:
        """Power off and release the store. Every change is already durable."""
        self.power_off()
        self.store.close()

    # --- the dispatcher -----------------------------------------------------------------------

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response APDU (data + SW1 SW2)."""
        if not self.powered:
            raise CardPoweredOff("card is not powered; power it on first")
        try:
            apdu = _parse(raw)
        except ApduFormatError:
            return _SW_WRONG_LENGTH
        self.store_error = None
        try:
            if apdu.cla == 0x00:  # the plain interindustry class: nearly every command
                handler = _ISO_COMMANDS.get(apdu.ins)
                response = handler(self, apdu) if handler is not None else _SW_INS_NOT_SUPPORTED
            else:
                response = self._dispatch_class(apdu)
            if len(response) - 2 > (apdu.le or 0):
                # A response never carries more than Ne bytes (ISO 7816-4): a handler bug.
                logger.error(
                    "%d bytes answered to Ne=%d on %s",
                    len(response) - 2,
                    apdu.le or 0,
                    redact_command(raw),
                )
                return _SW_UNKNOWN
            return response
        except SwError as exc:
            return exc.response()
        except StoreError as exc:
            # Nothing is answered that is not durable: "memory failure", the counter as the
            # store has it, and the reason for whoever drives the card.
            self.store_error = exc
            logger.error("%s", exc)
            return _SW_MEMORY_FAILURE
        except CardPoweredOff:
            raise
        except Exception:
            # A bug must not take the card down: answer 6F00 and keep serving.
            logger.exception("internal error on %s", redact_command(raw))
            return _SW_UNKNOWN

    def _dispatch_class(self, apdu: CommandApdu) -> bytes:
        """Commands of any class but ``00``: refusals by class, JPKI's proprietary ``80``."""
        cla = apdu.cla
        if cla & 0xC0 == 0x40:
            # Further interindustry class (ISO 7816-4 §5.4.1): logical channels 4..19, never 0.
            return status(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla == 0xFF or cla & 0x60:
            return status(SW.CLA_NOT_SUPPORTED)
        if cla & 0x03:
            return status(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla & 0x0C:
            # No secure-messaging session is modelled: READ BINARY and VERIFY answer 69FC,
            # other commands (SELECT) 6882 [card].
            if apdu.ins in _SM_SESSION_INS:
                return status(SW.SECURE_MESSAGING_NO_SESSION)
            return status(SW.SECURE_MESSAGING_NOT_SUPPORTED)
        if cla & 0x10:
            return status(SW.CHAINING_NOT_SUPPORTED)
        if cla & 0x80:
            app = self.session.app
            handler = app.commands.get((0x80, apdu.ins)) if app else None
            if handler is None:
                known = any((0x80, apdu.ins) in a.commands for a in self.applications.values())
                return status(SW.CONDITIONS_NOT_SATISFIED if known else SW.INS_NOT_SUPPORTED)
            return handler(self, apdu)
        # Unreachable: a class with none of the bits above is 00, dispatched in transmit.
        return status(SW.CLA_NOT_SUPPORTED)

    # --- durable changes ----------------------------------------------------------------------

    def read_pin(self, name: str) -> PinRecord:
        """A PIN record as stored now (another process may have changed it)."""
        record = self.store.read_pin(name)
        self.state.pins[name] = record
        return record

    def update_pin(self, name: str, change: PinChange) -> PinRecord:
        """Apply *change* to a PIN record in one durable step, before the card answers."""
        record = self.store.modify_pin(name, change)
        self.state.pins[name] = record
        return record

    def _transform(self, change: Callable[[CardState], None]) -> None:
        """A durable change outside the PIN records; the file model follows it."""
        self.state = self.store.transform(change)
        self._generation = self.store.generation()
        self._rebuild()

    # --- administration (test controls; not reachable by APDU) ---------------------------------

    def pin_record(self, name: str) -> PinRecord:
        self._require_pin(name)
        return self.read_pin(name)

    def _require_pin(self, name: str) -> None:
        if name not in self.state.pins:
            raise KeyError(f"this {self.state.profile} card has no {name!r} PIN")

    def set_pin(self, name: str, value: str) -> None:
        """Set a PIN's value and restore its counter (as a municipal counter would)."""
        spec = pins.SPECS[name]
        raw = value.encode("ascii", "replace")
        problem = spec.violation(raw)
        if problem:
            raise ValueError(problem)
        self._require_pin(name)
        self.update_pin(name, pins.new_value(raw))

    def set_tries(self, name: str, tries: int) -> None:
        self._require_pin(name)
        max_tries = pins.SPECS[name].max_tries  # the state is validated against the specs
        if not 0 <= tries <= max_tries:
            raise ValueError(f"tries for {name!r} must be 0..{max_tries}")
        self.update_pin(name, pins.set_tries(tries))

    def block(self, name: str) -> None:
        self.set_tries(name, 0)

    def set_quirks(self, **flags: bool) -> None:
        unknown = set(flags) - set(vars(self.state.quirks))
        if unknown:
            raise ValueError(f"unknown quirk {sorted(unknown)[0]!r}")

        def change(state: CardState) -> None:
            state.quirks = Quirks(**{**vars(state.quirks), **flags})

        self._transform(change)

    def set_atr_form(self, form: str) -> None:
        if form not in ATRS:
            raise ValueError(f"unknown ATR form {form!r}; known: {', '.join(ATRS)}")

        def change(state: CardState) -> None:
            state.atr_form = form

        self._transform(change)

    def set_profile(
        self, profile: str, *, auth: str | None = None, sign: str | None = None
    ) -> None:
        """Switch profile, re-issuing or revoking the signing key ([model] counter procedure)."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        self._transform(lambda state: apply_profile(state, profile, auth=auth, sign=sign))


__all__ = ["DEFAULT_ATR_FORM", "FACE_AUTH", "STANDARD", "Card", "CardPoweredOff"]
