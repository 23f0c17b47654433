"""The APDU mixes of the PC/SC benchmarks, and one load-generating client process.

``python -m tests.bench.pcsc_load READER MIX`` connects to READER through pyscard -> pcscd,
warms up, prints ``ready ATR``, then for every ``START SECONDS`` line on stdin
(``time.monotonic()`` values: the same clock in every process on Linux) sends MIX round robin
from START for SECONDS and prints ``APDUS ELAPSED``, until stdin ends. The scale benchmark runs
one per slot, all in the same windows.
"""

from __future__ import annotations

import sys
import time

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
    reader, mix_name = argv
    mix = MIXES[mix_name]
    with PcscTransport(reader, wait=60) as transport:
        transmit = transport.transmit
        for apdu in [SELECT_JPKI, *READ_MIX, *mix]:
            transmit(apdu)
        print("ready", transport.atr.hex().upper(), flush=True)
        for line in sys.stdin:
            start, seconds = (float(v) for v in line.split())
            time.sleep(max(0.0, start - time.monotonic()))
            end = start + seconds
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
