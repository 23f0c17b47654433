"""A small PC/SC app for the pcsc-spy tests: run as a program under libpcscspy.

It talks to ``libpcsclite.so.1`` through ctypes, as a C app does, and records its own trace
of the same exchanges (the harness's :class:`RecordingTransport` around it), so the test can
set what pcsc-spy saw against what the app knows it sent. Not pyscard: pyscard 2.x passes a
NULL ``pioRecvPci`` to ``SCardTransmit``, which the libpcscspy of pcsc-lite 1.9.9 (Debian
12) dereferences and crashes on.

    python spied_app.py READER TRACE_OUT APDU_HEX...
"""

from __future__ import annotations

import ctypes
import sys

from harness.trace.recorder import RecordingTransport
from harness.transport import Transport

SCARD_SCOPE_SYSTEM = 2
SCARD_SHARE_SHARED = 2
SCARD_PROTOCOL_ANY = 3
SCARD_LEAVE_CARD = 0


class _IoRequest(ctypes.Structure):
    _fields_ = [("dwProtocol", ctypes.c_ulong), ("cbPciLength", ctypes.c_ulong)]


class CtypesPcsc(Transport):
    """A transport over libpcsclite's C API, whatever library that name resolves to."""

    name = "ctypes-pcsc"

    def __init__(self, reader: str) -> None:
        self.lib = ctypes.CDLL("libpcsclite.so.1")
        self.context = ctypes.c_long()
        self._check(
            self.lib.SCardEstablishContext(
                SCARD_SCOPE_SYSTEM, None, None, ctypes.byref(self.context)
            )
        )
        self.card = ctypes.c_long()
        protocol = ctypes.c_ulong()
        self._check(
            self.lib.SCardConnect(
                self.context,
                reader.encode(),
                SCARD_SHARE_SHARED,
                SCARD_PROTOCOL_ANY,
                ctypes.byref(self.card),
                ctypes.byref(protocol),
            )
        )
        self.send_pci = _IoRequest(protocol.value, ctypes.sizeof(_IoRequest))
        self.recv_pci = _IoRequest(protocol.value, ctypes.sizeof(_IoRequest))
        self._atr = b""

    @staticmethod
    def _check(rv: int) -> None:
        if rv:
            raise SystemExit(f"PC/SC error 0x{rv & 0xFFFFFFFF:08X}")

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        buf = (ctypes.c_ubyte * 4096)()
        size = ctypes.c_ulong(len(buf))
        self._check(
            self.lib.SCardTransmit(
                self.card,
                ctypes.byref(self.send_pci),
                apdu,
                len(apdu),
                ctypes.byref(self.recv_pci),
                buf,
                ctypes.byref(size),
            )
        )
        return bytes(buf[: size.value])

    def reset(self) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        self.lib.SCardDisconnect(self.card, SCARD_LEAVE_CARD)
        self.lib.SCardReleaseContext(self.context)


def main(argv: list[str]) -> int:
    reader, out, *apdus = argv
    app = RecordingTransport(CtypesPcsc(reader))
    try:
        for apdu in apdus:
            app.transmit(bytes.fromhex(apdu))
    finally:
        app.close()
    app.save(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
