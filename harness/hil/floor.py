"""The tap's tries floor: an app's command that could spend the last tries is not forwarded.

``myna-hil tap`` relays an unmodified app's APDUs to a card in a reader. Every command that
can compare or replace a secret (INS 20, 21, 24, 25, 2C, 2D, 32 under any class byte:
``emulator.redact.SECRET_INS``) is checked first, with the guard's rules
(:mod:`harness.hil.guard`, docs/safety.md rule 3):

- only the forms whose counter an empty ``00 20 00 P2`` reports can pass (``00 20 00``,
  ``00 24 00/01``, ``00 2C 02/03``, ``80 32 00``); any other form is refused;
- the tries left of that reference are known from the card's last answer for it (a ``63Cx``
  to the app's own VERIFY, empty or not, under a selection the floor could follow), or else
  from an empty VERIFY of the same P2 that the tap sends itself (it spends nothing);
- if a wrong value could leave fewer than ``floor`` tries (``tries - 1 < floor``), or the card
  does not report the counter, the command is refused: the app gets :data:`REFUSAL_SW` and
  nothing reaches the card.

``floor`` 0 checks nothing and sends no query: every command is forwarded.

What is remembered is a lower bound of the counter, so it can only make the floor stricter:
a ``63Cx`` is the count; a correct value (``9000``) restores the maximum, which is at least
the count the floor let through; any other answer, a CHANGE / RESET RETRY COUNTER, a reset,
a power cycle or a lost answer forgets what was known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emulator.grammar import ApduFormatError, CommandApdu, tries_left
from emulator.redact import SECRET_INS
from harness.hil.guard import Selection, checkable, counter_query, is_counter_query

__all__ = ["DEFAULT_FLOOR", "MAX_FLOOR", "REFUSAL_SW", "Refusal", "TriesFloor"]

#: Tries a wrong value must leave, unless the user says otherwise (``--floor``).
DEFAULT_FLOOR = 2
#: The largest counter a My Number Card reference has (check numbers A and B: 10 tries).
MAX_FLOOR = 10
#: The answer to a refused command: ISO 7816-4 "authentication method blocked". Apps stop
#: retrying on it (the card itself answers 6983 / 6984 for a blocked reference), and it is
#: not 63Cx, so no app reads a count from it.
REFUSAL_SW = 0x6983

_ISO = 0x00
_VERIFY = 0x20
_P2_CURRENT_EF = 0x80

#: Where a counter lives, as far as the floor can tell: (application AID, how the reference
#: is named, number). An SFI and an EF id are kept apart: nothing says they coincide.
_Key = tuple[bytes, str, int]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a command was not forwarded (one line, never its data) and the tries the card
    reported (``None``: it reported none)."""

    reason: str
    tries: int | None = None


def _data(apdu: bytes) -> bytes | None:
    try:
        return CommandApdu.from_bytes(apdu).data
    except ApduFormatError:
        return None


class TriesFloor:
    """Decides, command by command, whether an app's APDU may reach the card.

    Call :meth:`check` before forwarding a command (it may send the counter query through
    *query*), :meth:`observe` with every command the card answered (the app's and the
    queries), and :meth:`forget` after a reset, a power cycle or a removal.
    """

    def __init__(self, floor: int = DEFAULT_FLOOR) -> None:
        if not 0 <= floor <= MAX_FLOOR:
            raise ValueError(f"the floor must be 0 to {MAX_FLOOR}, not {floor}")
        self.floor = floor
        self.selection = Selection()
        self._tries: dict[_Key, int] = {}
        #: (command, its key, the tries it was let through with), until :meth:`observe`.
        self._passed: tuple[bytes, _Key | None, int] | None = None

    def forget(self) -> None:
        """Nothing is known any more (reset, power cycle, card removed or swapped)."""
        self.selection.forget()
        self._tries.clear()
        self._passed = None

    def _key(self, apdu: bytes) -> _Key | None:
        app, p2 = self.selection.app, apdu[3]
        if app is None:
            return None
        if p2 == _P2_CURRENT_EF:
            return None if self.selection.ef is None else (app, "ef", self.selection.ef)
        if p2 & 0xE0 == 0x80 and p2 & 0x1F:
            return (app, "sfi", p2 & 0x1F)
        return None

    def known(self, apdu: bytes) -> int | None:
        """The tries left (a lower bound) of the reference *apdu* names, if known."""
        key = self._key(apdu) if len(apdu) >= 4 else None
        return None if key is None else self._tries.get(key)

    def check(self, apdu: bytes, query: Callable[[bytes], bytes]) -> Refusal | None:
        """``None`` when *apdu* may be forwarded, else why not.

        *query* sends the counter query to the card and returns its answer (the caller
        records it and must pass it to :meth:`observe`; transport errors propagate).
        """
        self._passed = None
        if self.floor == 0 or len(apdu) < 4 or apdu[1] not in SECRET_INS:
            return None
        if is_counter_query(apdu):
            return None  # an empty VERIFY spends nothing
        if not checkable(apdu):
            return Refusal(
                "a form whose counter an empty VERIFY does not report (class, INS or P1); "
                "only with --floor 0"
            )
        key = self._key(apdu)
        tries = None if key is None else self._tries.get(key)
        if tries is None:
            rsp = query(counter_query(apdu))
            sw = rsp[-2] << 8 | rsp[-1] if len(rsp) >= 2 else 0
            tries = tries_left(sw)
            if tries is None:
                return Refusal(
                    f"the card did not report the counter (empty VERIFY answered {sw:04X})"
                )
        if tries - 1 < self.floor:
            return Refusal(
                f"{tries} tries left: a wrong value would leave {max(tries - 1, 0)}, "
                f"fewer than the floor {self.floor}",
                tries,
            )
        self._passed = (apdu, key, tries)
        return None

    def observe(self, apdu: bytes, rsp: bytes | None) -> None:
        """Learn from *apdu* answered *rsp* (``None``: no answer, the card went away)."""
        passed, self._passed = self._passed, None
        if rsp is None:
            self.forget()
            return
        if len(apdu) >= 4 and apdu[1] in SECRET_INS:
            self._learn(apdu, rsp, passed)
        self.selection.follow(apdu, rsp)

    def _learn(
        self, apdu: bytes, rsp: bytes, passed: tuple[bytes, _Key | None, int] | None
    ) -> None:
        key = self._key(apdu)
        sw = rsp[-2] << 8 | rsp[-1] if len(rsp) >= 2 else 0
        if (apdu[0], apdu[1], apdu[2]) != (_ISO, _VERIFY, 0):
            self._tries.clear()  # CHANGE / RESET RETRY COUNTER / another form: start over
            return
        if key is None:
            return
        count = tries_left(sw)
        if count is not None:
            self._tries[key] = count
        elif not _data(apdu):
            pass  # an empty VERIFY's 9000 (verified this session) or 6984: not a count
        elif sw == 0x9000 and passed is not None and passed[0] == apdu:
            self._tries[key] = passed[2]  # a correct value restores the maximum: >= this
        else:
            self._tries.pop(key, None)
