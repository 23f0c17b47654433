"""Fixtures for the vpcd tests: a fake vpcd socket, a stand-in card, a real pcscd."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from emulator.errors import CardPoweredOff
from emulator.vpcd import VpcdServer
from tests.support.pcscd import ensure_pcscd

TIMEOUT = 5.0
STANDIN_ATR = bytes.fromhex("3B8A80010102030405060708090A0B")


def wait_until(predicate: Callable[[], object], timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.005)


class StandInCard:
    """Records what the server asks; answers an APDU with its bytes reversed + 90 00.

    Like the real card, ``transmit`` refuses while unpowered. ``tear_next`` makes the next
    APDU lose power mid-command; ``block`` holds ``transmit`` until released.
    """

    atr = STANDIN_ATR

    def __init__(self) -> None:
        self.events: list[str | bytes] = []
        self.powered = False
        self.tear_next = False
        self.fail_next = False
        self.response_size: int | None = None
        self.block: threading.Event | None = None
        self.in_transmit = threading.Event()

    def power_on(self) -> bytes:
        self.events.append("on")
        self.powered = True
        return self.atr

    def power_off(self) -> None:
        self.events.append("off")
        self.powered = False

    def reset(self) -> bytes:
        self.events.append("reset")
        self.powered = True
        return self.atr

    def close(self) -> None:
        self.events.append("close")

    def transmit(self, apdu: bytes) -> bytes:
        if not self.powered:
            raise CardPoweredOff("not powered")
        self.events.append(apdu)
        self.in_transmit.set()
        if self.block is not None:
            self.block.wait(TIMEOUT)
        if self.tear_next:
            self.tear_next = False
            self.powered = False
            raise CardPoweredOff("torn")
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("card bug")
        if self.response_size is not None:
            return bytes(self.response_size - 2) + b"\x90\x00"
        return apdu[::-1] + b"\x90\x00"

    @property
    def apdus(self) -> list[bytes]:
        return [e for e in self.events if isinstance(e, bytes)]


class FakeVpcd:
    """The reader side of the protocol on a localhost port: accepts the card, talks raw."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port: int = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> socket.socket:
        if self.conn is not None:
            self.conn.close()
        conn, _ = self.listener.accept()
        conn.settimeout(TIMEOUT)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        return conn

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def send_frame(self, payload: bytes) -> None:
        self.send(len(payload).to_bytes(2, "big") + payload)

    def recv_exact(self, n: int) -> bytes:
        assert self.conn is not None
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"card closed the connection after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def recv_frame(self) -> bytes:
        length = int.from_bytes(self.recv_exact(2), "big")
        return self.recv_exact(length)

    def exchange(self, payload: bytes) -> bytes:
        self.send_frame(payload)
        return self.recv_frame()

    def assert_closed_by_card(self) -> None:
        assert self.conn is not None
        assert self.conn.recv(1) == b"", "expected the card to close the connection"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


class Running:
    """A VpcdServer serving in a thread; stopped and joined by the fixture."""

    def __init__(self, server: VpcdServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "serve() did not return after stop()"


@pytest.fixture
def card() -> StandInCard:
    return StandInCard()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def serve(card: StandInCard, vpcd: FakeVpcd) -> Iterator[Callable[..., Running]]:
    """``serve()`` starts a server for ``card`` against ``vpcd`` and accepts its connection."""
    started: list[Running] = []

    def start(accept: bool = True, port: int | None = None) -> Running:
        server = VpcdServer(
            card,
            "127.0.0.1",
            port or vpcd.port,
            backoff_min=0.01,
            backoff_max=0.05,
            removal_hold=0.01,
        )
        running = Running(server)
        started.append(running)
        if accept:
            vpcd.accept()
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def pcscd() -> None:
    """A running pcscd with the vpcd readers (skipped, or failed under CI, if impossible)."""
    ensure_pcscd()
