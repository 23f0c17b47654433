"""The card side of vsmartcard's vpcd protocol: puts a virtual card into a PC/SC reader.

pcscd's vpcd driver listens on TCP port ``35963 + slot``; the card connects to it and then
only answers. Every message is a 2-byte big-endian length followed by the payload. A 1-byte
payload is a control code (power off / on, reset, get ATR -- only get-ATR is answered);
anything longer is a command APDU, answered with the response APDU.

Speed: Debian's vpcd writes length and body in two ``send()`` calls with Nagle on, so a card
that lets the kernel delay its ACKs stalls ~40 ms per exchange (21 APDU/s). This side sets
``TCP_NODELAY``, re-arms ``TCP_QUICKACK`` before every receive and writes each answer in one
``sendall`` (~12,000 APDU/s). See ``docs/vpcd.md``.

Robustness: the socket is read as a byte stream (several messages per segment, one message
over several segments); bad frames are logged and dropped; a connection that breaks -- pcscd
restarting, vpcd not listening yet -- is retried with a short backoff. The card only ever sees
complete frames, so a broken connection cannot leave it half-way through a command.

Observers: callables in :attr:`VpcdServer.observers` hear of insertion, removal, power and
every exchange (a control panel, a live log). They get the raw command, so they must redact
it (``emulator.redact``) before they keep or show it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from emulator import TRAFFIC
from emulator.errors import CardPoweredOff
from emulator.redact import redact_command

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HOST",
    "VPCD_BASE_PORT",
    "VirtualCard",
    "VpcdEvent",
    "VpcdObserver",
    "VpcdServer",
    "encode_frame",
    "reader_name",
    "slot_port",
]

DEFAULT_HOST = "127.0.0.1"
#: vpcd's first port (the CHANNELID 0x8C7B of Debian's reader.conf entry); slot n = base + n.
VPCD_BASE_PORT = 35963

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_GET_ATR = 0x04

#: Largest payload the 2-byte length can frame.
MAX_PAYLOAD = 0xFFFF
#: Answer when the card fails unexpectedly or its response cannot be framed.
SW_NO_DIAGNOSIS = b"\x6f\x00"

_RECV_SIZE = 65536
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class VirtualCard(Protocol):
    """What the server needs from a card (``emulator.card.Card`` and ``EchoCard`` fit)."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...


EventKind = Literal["inserted", "removed", "power-on", "power-off", "reset", "exchange"]


@dataclass(frozen=True, slots=True)
class VpcdEvent:
    """What happened in a slot. For ``exchange``: the raw command (it may hold a PIN: redact
    it before keeping or showing it), the response (``None``: the card lost power inside
    the command) and the card's time to answer in seconds."""

    kind: EventKind
    command: bytes = b""
    response: bytes | None = None
    latency: float = 0.0


#: Called in the slot's thread, in order; must be quick and must not raise (it is logged).
VpcdObserver = Callable[[VpcdEvent], None]


def slot_port(slot: int, base: int = VPCD_BASE_PORT) -> int:
    """TCP port of vpcd slot ``slot`` (two slots per reader.conf entry)."""
    if slot < 0:
        raise ValueError(f"slot must be >= 0, not {slot}")
    return base + slot


def reader_name(slot: int) -> str:
    """The PC/SC reader pcscd shows for vpcd slot *slot*.

    Each reader.conf entry gives two slots; Debian's entry is "Virtual PCD", the extra ones
    ci/pcscd-start.sh writes are "Virtual PCD K"; pcscd appends " 00 0<n>".
    """
    if slot < 0:
        raise ValueError(f"slot must be >= 0, not {slot}")
    entry, half = divmod(slot, 2)
    prefix = "Virtual PCD" if entry == 0 else f"Virtual PCD {entry}"
    return f"{prefix} 00 0{half}"


def encode_frame(payload: bytes) -> bytes:
    """Length-prefix ``payload`` for the vpcd stream (one buffer, for one ``sendall``)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes cannot be framed (max {MAX_PAYLOAD})")
    return len(payload).to_bytes(2, "big") + payload


class TruncatedFrameError(Exception):
    """The stream ended inside a frame."""


class _PowerLost(Exception):
    """The card lost power mid-command (injected tearing): pull it from the reader."""


class _FrameReader:
    """Exact reads of length-prefixed frames from a stream socket.

    The common case -- a frame start read whole by one ``recv`` -- returns a slice of it
    with no buffering. Once a frame has started, only the bytes still missing are asked for.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _recv(self, size: int) -> bytes:
        if _TCP_QUICKACK is not None:
            # The kernel falls back to delayed ACKs after a while: re-arm every time.
            self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        return self._sock.recv(size)

    def _fill(self, n: int) -> bool:
        """Buffer at least ``n`` bytes; False when the stream ends first."""
        while len(self._buf) < n:
            chunk = self._recv(n - len(self._buf) if self._buf else _RECV_SIZE)
            if not chunk:
                return False
            self._buf += chunk
        return True

    def read_frame(self) -> bytes | None:
        """The next payload; None on a clean end of stream; TruncatedFrameError mid-frame."""
        if not self._buf:
            # The usual cases, without buffering: vpcd's 2-byte length segment followed by
            # the body (it holds the body back until the length is ACKed), or one whole frame.
            chunk = self._recv(_RECV_SIZE)
            if len(chunk) == 2:
                length = (chunk[0] << 8) | chunk[1]
                body = self._recv(length) if length else b""
                if len(body) == length:
                    return body
                chunk += body
            elif len(chunk) > 2 and len(chunk) == 2 + ((chunk[0] << 8) | chunk[1]):
                return chunk[2:]
            self._buf += chunk
        if not self._fill(2):
            if self._buf:
                raise TruncatedFrameError(f"stream ended after {len(self._buf)} of 2 length bytes")
            return None
        length = (self._buf[0] << 8) | self._buf[1]
        if not self._fill(2 + length):
            raise TruncatedFrameError(
                f"stream ended after {len(self._buf) - 2} of {length} payload bytes"
            )
        payload = bytes(self._buf[2 : 2 + length])
        del self._buf[: 2 + length]
        return payload


class VpcdServer:
    """Keeps one card in one vpcd slot: connect, answer, reconnect, until :meth:`stop`.

    Run :meth:`serve` in a thread of its own (one per slot, each with its own card);
    :meth:`stop` may be called from any thread or a signal handler. The card is powered off
    whenever the connection ends, as a card pulled from a reader loses power.
    """

    def __init__(
        self,
        card: VirtualCard,
        host: str = DEFAULT_HOST,
        port: int = VPCD_BASE_PORT,
        *,
        backoff_min: float = 0.05,
        backoff_max: float = 1.0,
        connect_timeout: float = 2.0,
        removal_hold: float = 1.0,
        silence_timeout: float = 2.0,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        #: After a power loss, stay out this long so pcscd's presence poll (~0.4 s) sees
        #: the card removed, as it would a card pulled from a physical reader.
        self.removal_hold = removal_hold
        #: vpcd sends a get-ATR within one presence poll (~0.4 s) of accepting a card. A
        #: connection that stays silent longer is either queued behind another card on the
        #: same port or accepted by a vpcd that no longer polls the slot (after a transmit
        #: hit a dead card socket, vpcd 3.3 can leave the slot so): reconnect, which
        #: un-sticks the slot.
        self.silence_timeout = silence_timeout
        self._stop = threading.Event()
        #: stop() or eject() asked for: no further frame is started (a plain flag, read
        #: once per APDU; the events above are what waits use).
        self._halt = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._powered = False
        self._card_lock = threading.Lock()
        #: Set while a vpcd connection is up (tests wait on it).
        self.connected = threading.Event()
        #: Number of vpcd connections made so far.
        self.connections = 0
        #: Told of every insertion, removal, power change and exchange (see VpcdEvent).
        self.observers: list[VpcdObserver] = []
        #: Cleared by :meth:`eject`: the card stays out of the reader until :meth:`insert`.
        self._present = threading.Event()
        self._present.set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`serve` to return after the exchange in hand. Safe from any thread.

        Only the receiving half of the socket is shut down: an answer being computed is
        still sent, then the next read sees the end of the stream.
        """
        self._stop.set()
        self._halt = True
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):  # already disconnected
                    self._sock.shutdown(socket.SHUT_RD)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def present(self) -> bool:
        """False after :meth:`eject` until :meth:`insert` (the card is out of the reader)."""
        return self._present.is_set()

    def eject(self) -> None:
        """Pull the card from the reader after the exchange in hand; it stays out until
        :meth:`insert`. Safe from any thread."""
        self._present.clear()
        self._halt = True
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RD)

    def insert(self) -> None:
        """Put an ejected card back: the server connects to vpcd again."""
        self._present.set()
        self._halt = self._stop.is_set()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[VirtualCard]:
        """The card, with no APDU or power change running meanwhile (test controls use it).

        Not from an observer: observers of exchanges are called with this lock held.
        """
        with self._card_lock:
            yield self.card

    def _notify(self, event: VpcdEvent) -> None:
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                logger.exception("vpcd at %s: an observer failed", self.address)

    def swap_card(self, card: VirtualCard) -> VirtualCard:
        """Put another card in the slot without dropping the vpcd connection; the old one.

        pcscd notices an insertion only at its next presence poll (~0.4 s); a test suite
        that wants a fresh card per test swaps it here instead and powers it up through
        PC/SC (a new connection or a reset). The new card is powered on before its first APDU.
        """
        with self._card_lock:
            old, self.card = self.card, card
            if self._powered:
                self._call_power(old.power_off)
            self._powered = False
        return old

    def serve(self) -> None:
        """Connect to vpcd and serve the card until :meth:`stop`; retry when vpcd is gone."""
        delay = self.backoff_min
        waiting_logged = False
        while not self._stop.is_set():
            if not self._present.is_set():
                self._stop.wait(0.05)  # ejected: out of the reader until insert()
                continue
            sock = self._connect()
            if sock is None:
                if not waiting_logged:
                    logger.info("waiting for vpcd at %s (is pcscd running?)", self.address)
                    waiting_logged = True
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_min
            waiting_logged = False
            pulled = False
            try:
                pulled = self._run_connection(sock)
            finally:
                with self._lock:
                    self._sock = None
                sock.close()
                with self._card_lock:
                    self._power_off()
                if self.connected.is_set():
                    logger.info("card removed from vpcd at %s", self.address)
                    self.connected.clear()
                    self._notify(VpcdEvent("removed"))
            if pulled:
                self._stop.wait(self.removal_hold)

    def _connect(self) -> socket.socket | None:
        """A connected socket, or None when vpcd does not accept (yet)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            logger.debug("connect to vpcd at %s failed: %s", self.address, exc)
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return None
            self._sock = sock
        logger.debug("connected to vpcd at %s; waiting for its first poll", self.address)
        return sock

    def _run_connection(self, sock: socket.socket) -> bool:
        """Serve one connection; True when the card lost power and must stay out a while."""
        # The per-APDU path: one frame read, one card call under the card lock, one sendall
        # (the lookups are hoisted; handle() is the same protocol for everything else).
        read_frame = _FrameReader(sock).read_frame
        sendall = sock.sendall
        card_lock = self._card_lock
        transmit = self._transmit
        inserted = False
        sock.settimeout(self.silence_timeout)
        while True:
            try:
                payload = read_frame()
            except TruncatedFrameError as exc:
                logger.info("vpcd at %s: %s; frame dropped", self.address, exc)
                return False
            except TimeoutError:
                logger.debug(
                    "vpcd at %s silent for %.1f s; reconnecting", self.address, self.silence_timeout
                )
                return False
            except OSError as exc:
                logger.info("vpcd at %s: connection lost: %s", self.address, exc)
                return False
            if not inserted:
                inserted = True
                sock.settimeout(None)  # vpcd talks to us: the card is in
                self.connections += 1
                self.connected.set()
                logger.info("card inserted into vpcd at %s", self.address)
                self._notify(VpcdEvent("inserted"))
            if payload is None:
                if not self._halt:
                    logger.info("vpcd at %s closed the connection", self.address)
                return False
            if self._halt:
                return False  # a frame read after stop() or eject() is not started
            try:
                if len(payload) > 1:
                    with card_lock:
                        response = transmit(payload)  # at most MAX_PAYLOAD bytes
                    answer = len(response).to_bytes(2, "big") + response
                else:
                    control = self.handle(payload)
                    if control is None:
                        continue
                    answer = control
            except _PowerLost:
                logger.info("vpcd at %s: card lost power mid-command; pulling it", self.address)
                return True
            try:
                sendall(answer)
            except OSError as exc:
                logger.info("vpcd at %s: answer not delivered: %s", self.address, exc)
                return False

    # -- protocol -------------------------------------------------------------------------

    def handle(self, payload: bytes) -> bytes | None:
        """The framed answer to one payload, or None when none is due."""
        if len(payload) == 0:
            logger.info("vpcd at %s: empty frame dropped", self.address)
            return None
        with self._card_lock:
            if len(payload) == 1:
                return self._control(payload[0])
            return encode_frame(self._transmit(payload))

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_GET_ATR:
            return encode_frame(self.card.atr)
        if code == CTRL_POWER_ON:
            logger.debug("vpcd at %s: power on", self.address)
            self._call_power(self.card.power_on)
            self._powered = True
            self._notify(VpcdEvent("power-on"))
        elif code == CTRL_POWER_OFF:
            logger.debug("vpcd at %s: power off", self.address)
            self._power_off()
        elif code == CTRL_RESET:
            logger.debug("vpcd at %s: reset", self.address)
            self._call_power(self.card.reset)
            self._powered = True
            self._notify(VpcdEvent("reset"))
        else:
            logger.info("vpcd at %s: unknown control code %02X dropped", self.address, code)
        return None

    def _call_power(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            logger.exception("vpcd at %s: card power operation failed", self.address)

    def _power_off(self) -> None:
        if self._powered:
            self._powered = False
            self._call_power(self.card.power_off)
            self._notify(VpcdEvent("power-off"))

    def _transmit(self, apdu: bytes) -> bytes:
        if not self.observers:
            return self._answer(apdu)
        start = time.perf_counter()
        try:
            response = self._answer(apdu)
        except _PowerLost:
            self._notify(VpcdEvent("exchange", apdu, None, time.perf_counter() - start))
            raise
        self._notify(VpcdEvent("exchange", apdu, response, time.perf_counter() - start))
        return response

    def _answer(self, apdu: bytes) -> bytes:
        if not self._powered:
            # vpcd powers the card before use; a card not seen powered up gets powered now
            # rather than refusing the APDU.
            self._call_power(self.card.power_on)
            self._powered = True
        traffic = logger.isEnabledFor(TRAFFIC)
        if traffic:
            logger.log(TRAFFIC, "%s > %s", self.address, redact_command(apdu))
        try:
            response = self.card.transmit(apdu)
        except CardPoweredOff:
            # Powered as far as we know, so the card lost power inside the command: a real
            # reader sees the card go mute, as when it is pulled out.
            self._powered = False
            raise _PowerLost from None
        except Exception:
            logger.exception("vpcd at %s: card failed on an APDU; answering 6F00", self.address)
            return SW_NO_DIAGNOSIS
        if len(response) > MAX_PAYLOAD:
            logger.error(
                "vpcd at %s: %d-byte response cannot be framed; answering 6F00",
                self.address,
                len(response),
            )
            return SW_NO_DIAGNOSIS
        if traffic:
            logger.log(TRAFFIC, "%s < %s", self.address, response.hex().upper())
        return response
