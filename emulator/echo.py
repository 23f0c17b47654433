"""A trivial card that answers every APDU with 90 00: the throughput baseline.

It has the same surface as :class:`emulator.card.Card` (power, ATR, transmit, close), so the
vpcd server can carry it, and costs nothing per APDU: whatever it reaches through
pyscard -> pcscd -> vpcd is the ceiling of that path on the machine.
"""

from __future__ import annotations

#: T=1, no historical bytes ("3B 80 80 01 01", TCK 01): distinct from every JPKI profile ATR,
#: so a test can tell which card sits in the reader.
ECHO_ATR = bytes.fromhex("3B80800101")
_SW_OK = b"\x90\x00"


class EchoCard:
    """Answers 90 00 to everything; powers up on demand; keeps no state."""

    def __init__(self, atr: bytes = ECHO_ATR) -> None:
        self._atr = atr
        self.powered = False
        #: Number of APDUs answered (tests and benchmarks read it).
        self.apdu_count = 0

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self.powered = True
        return self._atr

    def power_off(self) -> None:
        self.powered = False

    def reset(self) -> bytes:
        self.powered = True
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        self.apdu_count += 1
        return _SW_OK

    def close(self) -> None:
        self.powered = False
