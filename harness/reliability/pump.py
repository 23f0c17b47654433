"""A throw-away PC/SC client: hex APDUs on stdin, hex responses on stdout, one per line.

The tearing run starts one per round: after a transmit hits a card whose emulator was
killed, vpcd 3.3 may ignore re-inserted cards for as long as the *client process* lives
(emulator/vpcd.py, tests/vpcd/test_e2e.py), so that process must not outlive the round.

Protocol: first line ``READY <ATR hex>`` or ``NOCARD <reason>``; then for every input line
``R <response hex>`` or ``X <error>`` (the card is gone; the pump exits).
Run: ``python -m harness.reliability.pump READER [--wait SECONDS]``.
"""

from __future__ import annotations

import argparse
import sys

from harness.hil.pcsc import PcscError, PcscTransport
from harness.transport import TransportError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.reliability.pump")
    parser.add_argument("reader")
    parser.add_argument("--wait", type=float, default=5.0)
    args = parser.parse_args()
    out = sys.stdout
    try:
        transport = PcscTransport(args.reader, wait=args.wait)
    except PcscError as exc:
        print(f"NOCARD {exc}", file=out, flush=True)
        return 3
    try:
        print(f"READY {transport.atr.hex()}", file=out, flush=True)
        for line in sys.stdin:
            try:
                response = transport.transmit(bytes.fromhex(line.strip()))
            except TransportError as exc:
                print(f"X {type(exc).__name__}", file=out, flush=True)
                return 0
            print(f"R {response.hex()}", file=out, flush=True)
    finally:
        transport.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
