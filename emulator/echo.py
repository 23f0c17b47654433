"""A trivial card that answers every APDU with 90 00: the throughput baseline.

``EchoCard(sized=True)`` (``myna-emu serve --echo-sized``) answers as many bytes as the
command's Le asks for (zeros, then 90 00) instead: the baseline for a mix whose answers carry
data, so that the two cards differ only in the card's work and not in the bytes on the wire
(a READ BINARY of 256 bytes costs pcscd and vpcd more than a bare 90 00).

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

    def __init__(self, atr: bytes = ECHO_ATR, *, sized: bool = False) -> None:
        self._atr = atr
        self.sized = sized
        #: Answers by Le, made once each (the card keeps costing nothing per APDU).
        self._sized_answers: dict[int, bytes] = {}
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
        if not self.sized:
            return _SW_OK
        le = expected_length(apdu)
        answer = self._sized_answers.get(le)
        if answer is None:
            answer = self._sized_answers[le] = bytes(le) + _SW_OK
        return answer

    def close(self) -> None:
        self.powered = False


def expected_length(apdu: bytes) -> int:
    """The number of bytes *apdu*'s Le asks for (0 without Le; short and extended forms).

    Only the lengths are read, so any byte string gets an answer: 00 as Le means the maximum
    (256, or 65536 in the extended form).
    """
    n = len(apdu)
    if n <= 4:
        return 0
    if n == 5:  # case 2 short
        return apdu[4] or 256
    lc = apdu[4]
    if lc:  # short Lc
        return (apdu[-1] or 256) if n == 6 + lc else 0
    if n == 7:  # case 2 extended
        return int.from_bytes(apdu[5:7]) or 65536
    lc = int.from_bytes(apdu[5:7])
    return (int.from_bytes(apdu[-2:]) or 65536) if n == 9 + lc else 0
