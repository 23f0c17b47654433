"""What every application session shares: SELECT, READ BINARY, VERIFY and the PIN status.

A session talks to one application over any :class:`~harness.transport.Transport`. PIN values
are taken as ``str`` (encoded as UTF-8, the way an app would send what was typed) or ``bytes``
(sent exactly); they are never logged, stored or put in an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.grammar import SW, CommandApdu, tries_left
from harness.errors import ApduError, PinBlockedError, ProtocolError, error_for
from harness.transport import Transport

INS_SELECT = 0xA4
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_READ_BINARY = 0xB0
P1_SELECT_AID = 0x04
P1_SELECT_EF = 0x02
P2_NO_FCI = 0x0C
P2_CURRENT_EF = 0x80
CHUNK = 0x100
#: The most a short READ BINARY can reach: P1 bit 8 means SFI, so offsets stop at 7FFF. Every
#: read loop stops here, so a card that keeps answering cannot keep the harness reading.
MAX_EF_SIZE = 0x8000


@dataclass(frozen=True, slots=True)
class PinStatus:
    """A PIN's counter as an empty VERIFY reports it (no try is spent).

    ``tries_left`` is ``None`` when the card did not say (the ``9000``-after-success quirk:
    the PIN is verified in this session, so its counter is at the maximum). ``usable`` is
    False when the card answers ``6984`` even to the status query (a face-auth card's
    auth PIN [model]) or has no such PIN at all.
    """

    name: str
    tries_left: int | None
    max_tries: int
    blocked: bool
    verified: bool = False
    usable: bool = True

    def describe(self) -> str:
        if not self.usable:
            return "not available"
        if self.blocked:
            return "blocked"
        if self.tries_left is None:
            return "verified (card did not report tries)"
        return f"{self.tries_left}/{self.max_tries} tries"


def pin_named(name: str, known: tuple[str, ...], where: str) -> str:
    """*name* if *where* holds that secret, else a ``ValueError`` listing the ones it holds
    (a typo must not query or spend another PIN's counter)."""
    if name not in known:
        raise ValueError(f"the {where} has no PIN {name!r}; known: {', '.join(known)}")
    return name


def to_bytes(pin: str | bytes) -> bytes:
    """A typed value as the APDU data an app sends: UTF-8 for text, bytes unchanged."""
    return pin.encode("utf-8") if isinstance(pin, str) else bytes(pin)


def status_from_sw(name: str, max_tries: int, sw: int) -> PinStatus:
    """Interpret the answer to an empty VERIFY the way docs/card.md#verify says."""
    n = tries_left(sw)
    if n is not None:
        return PinStatus(name, n, max_tries, n == 0)
    if sw == SW.OK:
        return PinStatus(name, None, max_tries, False, verified=True)
    if sw == SW.REFERENCE_DATA_NOT_USABLE:
        return PinStatus(name, 0, max_tries, True, usable=False)
    raise error_for(sw, command="VERIFY (status)")


class Session:
    """Base of the application sessions. Subclasses set ``AID`` and ``NAME``."""

    AID: bytes = b""
    NAME: str = ""

    def __init__(self, transport: Transport, *, select: bool = True) -> None:
        self.transport = transport
        if select:
            self.select()

    # --- raw exchange ---------------------------------------------------------------------

    def send(self, apdu: CommandApdu) -> tuple[bytes, int]:
        """Transmit *apdu*; return (data, SW) without interpreting the SW."""
        rsp = self.transport.transmit(apdu.to_bytes())
        if len(rsp) < 2:
            raise ApduError(0x6F00, rsp, "response shorter than a status word")
        return rsp[:-2], rsp[-2] << 8 | rsp[-1]

    def call(self, apdu: CommandApdu, what: str) -> bytes:
        """Transmit *apdu*; return its data or raise the typed error for its SW."""
        data, sw = self.send(apdu)
        if sw != SW.OK:
            raise error_for(sw, data, what)
        return data

    # --- selection and files ----------------------------------------------------------------

    def select(self) -> None:
        """SELECT this application by DF name; clears its verified PINs on the card."""
        self.call(
            CommandApdu(0x00, INS_SELECT, P1_SELECT_AID, P2_NO_FCI, self.AID), f"SELECT {self.NAME}"
        )

    def select_ef(self, fid: int) -> None:
        self.call(
            CommandApdu(0x00, INS_SELECT, P1_SELECT_EF, P2_NO_FCI, fid.to_bytes(2, "big")),
            f"SELECT EF {fid:04X}",
        )

    def read_binary(self, offset: int, le: int) -> tuple[bytes, int]:
        """One READ BINARY of the current EF; returns (data, SW) as the card answered."""
        apdu = CommandApdu(0x00, INS_READ_BINARY, offset >> 8 & 0x7F, offset & 0xFF, b"", le)
        return self.send(apdu)

    def read_ef(self, fid: int, size: int | None = None) -> bytes:
        """The content of EF *fid*: *size* bytes, or everything up to the end of the file.

        Bounded: an empty ``9000`` answer (no progress) or a file longer than
        :data:`MAX_EF_SIZE` raises :class:`~harness.errors.ProtocolError`.
        """
        what = f"READ BINARY EF {fid:04X}"
        if size is not None and not 0 <= size <= MAX_EF_SIZE:
            raise ValueError(f"size must be 0..{MAX_EF_SIZE}, not {size}")
        self.select_ef(fid)
        out = bytearray()
        while size is None or len(out) < size:
            if len(out) >= MAX_EF_SIZE:
                raise ProtocolError(what, f"the file goes on past {MAX_EF_SIZE} bytes")
            want = min(CHUNK, (MAX_EF_SIZE if size is None else size) - len(out))
            data, sw = self.read_binary(len(out), want)
            if sw in (SW.OK, SW.END_OF_FILE) and len(data) > want:
                raise ProtocolError(what, f"{len(data)} bytes answered, {want} asked", sw)
            if sw == SW.OK:
                if not data:
                    raise ProtocolError(what, f"no data at offset {len(out)}")
                out += data
                continue
            if sw == SW.END_OF_FILE:
                out += data
                break
            if sw == SW.WRONG_P1P2 and out:
                break  # the previous read ended exactly at the end of the file
            raise error_for(sw, data, what)
        return bytes(out)

    def read_der(self, fid: int) -> bytes:
        """A DER object (certificate): the 4-byte header gives the size (``LLLL + 4``)."""
        head = self.read_ef(fid, 4)
        if len(head) < 4 or head[:2] != b"\x30\x82":
            raise ApduError(SW.OK, b"", f"EF {fid:04X} does not start with 30 82")
        n = int.from_bytes(head[2:4], "big")
        if 4 + n > MAX_EF_SIZE:
            raise ProtocolError(
                f"READ BINARY EF {fid:04X}",
                f"the object declares {n} bytes, more than an EF can hold",
            )
        return head + self._read_more(fid, 4, n)

    def _read_more(self, fid: int, offset: int, n: int) -> bytes:
        what = f"READ BINARY EF {fid:04X}"
        out = bytearray()
        while len(out) < n:
            want = min(CHUNK, n - len(out))
            data, sw = self.read_binary(offset + len(out), want)
            if sw not in (SW.OK, SW.END_OF_FILE):
                raise error_for(sw, data, what)
            if len(data) > want:
                raise ProtocolError(what, f"{len(data)} bytes answered, {want} asked", sw)
            if not data and sw == SW.OK:
                raise ProtocolError(what, f"no data at offset {offset + len(out)}")
            out += data
            if sw == SW.END_OF_FILE:
                break
        return bytes(out)

    # --- PINs ---------------------------------------------------------------------------

    def _pin_status(self, name: str, fid: int, max_tries: int) -> PinStatus:
        self.select_ef(fid)
        _, sw = self.send(CommandApdu(0x00, INS_VERIFY, 0x00, P2_CURRENT_EF))
        return status_from_sw(name, max_tries, sw)

    def _verify(self, fid: int, pin: str | bytes, what: str) -> None:
        """VERIFY with data against EF *fid*; raises WrongPinError / PinBlockedError."""
        self.select_ef(fid)
        self.call(
            CommandApdu(0x00, INS_VERIFY, 0x00, P2_CURRENT_EF, to_bytes(pin)), f"VERIFY {what}"
        )

    def _change(self, fid: int, new: str | bytes, what: str) -> None:
        """CHANGE REFERENCE DATA ``00 24 01 80`` (the old value must be verified first)."""
        self.select_ef(fid)
        self.call(
            CommandApdu(0x00, INS_CHANGE_REFERENCE_DATA, 0x01, P2_CURRENT_EF, to_bytes(new)),
            f"CHANGE {what}",
        )


__all__ = ["PinBlockedError", "PinStatus", "Session", "status_from_sw", "to_bytes"]
