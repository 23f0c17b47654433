"""The APDU mixes of the PC/SC benchmarks, and one load-generating client process.

``python -m tests.bench.pcsc_load MIX READER [READER ...]`` connects to each READER through
pyscard -> pcscd, warms up, prints ``ready ATR [ATR ...]``, then for every
``START SECONDS [WHICH]`` line on stdin (``time.monotonic()`` values: the same clock in every
process on Linux) sends MIX round robin to reader number WHICH (default 0) from START for
SECONDS and prints ``APDUS ELAPSED``, until stdin ends. The scale benchmark runs one per
slot, all in the same windows; with two readers each, the clients switch between two cards
window by window.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack

from harness.hil.pcsc import PcscTransport

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
EMPTY_VERIFY_AUTH = bytes.fromhex("00200098")

#: Read-only mix: SELECT JPKI, SELECT the auth certificate, READ BINARY 256, empty VERIFY.
READ_MIX = [
    SELECT_JPKI,
    bytes.fromhex("00A4020C02000A"),
    bytes.fromhex("00B0000000"),
    EMPTY_VERIFY_AUTH,
]
#: Status queries alone (after one SELECT JPKI): the empty VERIFY of the auth PIN (63C3).
STATUS_MIX = [EMPTY_VERIFY_AUTH]
MIXES = {"read": READ_MIX, "status": STATUS_MIX}


def main(argv: list[str]) -> int:
    mix_name, *readers = argv
    mix = MIXES[mix_name]
    with ExitStack() as stack:
        transports = [stack.enter_context(PcscTransport(r, wait=60)) for r in readers]
        for transport in transports:
            for apdu in [SELECT_JPKI, *READ_MIX, *mix]:
                transport.transmit(apdu)
        print("ready", *(t.atr.hex().upper() for t in transports), flush=True)
        for line in sys.stdin:
            start, seconds, *which = line.split()
            transmit = transports[int(which[0]) if which else 0].transmit
            time.sleep(max(0.0, float(start) - time.monotonic()))
            end = float(start) + float(seconds)
            count = 0
            began = time.monotonic()
            while time.monotonic() < end:
                for apdu in mix:
                    transmit(apdu)
                count += len(mix)
            print(count, time.monotonic() - began, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
