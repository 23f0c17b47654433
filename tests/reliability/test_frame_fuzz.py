"""Frame fuzzer for the vpcd socket: this test plays vpcd, ``myna-emu serve`` is the card.

A real ``myna-emu serve --state FILE --port P`` process connects to a port this module
listens on. Every hypothesis example takes its next connection and sends bursts of frames --
empty frames, random control bytes, random APDUs of random length (up to the 2-byte limit),
valid APDUs in between -- cut into TCP writes at random points, then ends the connection
abruptly: a plain close, a reset (RST), a frame announcing more bytes than are sent, or a
half-close. An in-process card loaded from the same state file and driven by a small
independent model of the protocol says what every answer must be.

Invariants: the server process never dies and reconnects after every ending; every frame is
answered exactly as the model answers it (so valid APDUs between the garbage get correct
answers and the stream never desynchronises); nothing is sent that was not asked for; the
state file always loads and its counters match the model's.

Budget: ``MYNA_FRAME_FUZZ_EXAMPLES`` (default 300; a few seconds). No vpcd slot is used.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.card import Card
from emulator.errors import CardPoweredOff
from emulator.store import SqliteStore, copy_card
from tests.reliability.conftest import budget
from tests.support.cards import fresh_state
from tests.support.pcscd import REPO

EXAMPLES = budget("MYNA_FRAME_FUZZ_EXAMPLES", 300)
TIMEOUT = 5.0

VALID = [
    bytes.fromhex("00A4040C0AD392F000260100000001"),  # SELECT JPKI
    bytes.fromhex("00A4020C02000A"),  # SELECT the auth certificate
    bytes.fromhex("00B0000004"),  # READ BINARY 4
    bytes.fromhex("00B000FF10"),  # READ BINARY at an offset
    bytes.fromhex("00200098"),  # status of the auth PIN
    bytes.fromhex("002000980431323334"),  # the right auth PIN: restores the counter
    bytes.fromhex("00CA5F5100"),  # GET DATA: the contact ATR
    bytes.fromhex("00A4040C0AD392100031000101040801"),  # SELECT text AP (+ trailing byte)
]


class Model:
    """The card side of vpcd as the protocol reference describes it (not emulator/vpcd.py)."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.powered = False

    def frame(self, payload: bytes) -> bytes | None:
        if not payload:
            return None
        if len(payload) == 1:
            code = payload[0]
            if code == 0x04:
                return self.card.atr
            if code in (0x01, 0x02):
                self.card.power_on()
                self.powered = True
            elif code == 0x00 and self.powered:
                self.card.power_off()
                self.powered = False
            return None
        if not self.powered:
            self.card.power_on()
            self.powered = True
        try:
            return self.card.transmit(payload)
        except CardPoweredOff:  # pragma: no cover - no tearing fault is armed
            raise

    def disconnect(self) -> None:
        if self.powered:
            self.card.power_off()
            self.powered = False


@dataclass
class Rig:
    listener: socket.socket
    proc: subprocess.Popen[bytes]
    state: Path
    model: Model
    connections: int = 0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("frame-fuzz")
    state = work / "card.db"
    Card.create(state, fresh_state()).close()
    store = SqliteStore.open(state)
    model = Model(Card(store.load()))  # an in-memory twin of the served card
    store.close()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    with open(work / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli_serve", "--state", str(state),
             "--port", str(port)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        yield Rig(listener, proc, state, model)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        listener.close()


# --- strategies -------------------------------------------------------------------------------

garbage_apdu = st.binary(min_size=2, max_size=300)
big_apdu = st.builds(lambda n, b: bytes([b]) * n, st.integers(301, 0xFFFF), st.integers(0, 255))
control = st.one_of(
    st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x04"]), st.binary(min_size=1, max_size=1)
)
frame = st.one_of(
    st.sampled_from(VALID), garbage_apdu, control, st.just(b""), big_apdu,
)  # fmt: skip
burst = st.lists(frame, min_size=1, max_size=6)
ending = st.one_of(
    st.sampled_from(["close", "rst", "half-close"]),
    # A frame cut short: (announced length, bytes actually sent), or half a length header.
    st.integers(1, 0xFFFF).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, min(n - 1, 64)))),
    st.just((-1, 0)),
)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"server closed after {len(buf)} of {n} answer bytes")
        buf += chunk
    return buf


def _same(apdu: bytes, got: bytes, want: bytes) -> bool:
    if got == want:
        return True
    # GET CHALLENGE and PSS signatures are random by design: length and SW must agree.
    random_ins = len(apdu) > 1 and apdu[1] in (0x84, 0x2A)
    return random_ins and len(got) == len(want) and got[-2:] == want[-2:]


def _send_cut(conn: socket.socket, data: bytes, cuts: list[int]) -> None:
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        conn.sendall(data[start:cut])
        start = cut
    conn.sendall(data[start:])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(
    bursts=st.lists(st.tuples(burst, st.lists(st.integers(0, 1 << 20), max_size=4)), max_size=4),
    end=ending,
)
def test_garbage_frames_never_kill_desync_or_corrupt(
    rig: Rig, bursts: list[tuple[list[bytes], list[int]]], end: object
) -> None:
    assert rig.proc.poll() is None, "myna-emu serve died"
    conn, _ = rig.listener.accept()  # the server reconnected after the last ending
    rig.connections += 1
    conn.settimeout(TIMEOUT)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    model = rig.model
    try:
        for frames, cuts in bursts:
            data = b"".join(len(f).to_bytes(2, "big") + f for f in frames)
            _send_cut(conn, data, cuts)
            for payload in frames:
                want = model.frame(payload)
                if want is None:
                    continue
                length = int.from_bytes(_recv_exact(conn, 2), "big")
                got = _recv_exact(conn, length)
                assert _same(payload, got, want), (payload[:8].hex(), got.hex(), want.hex())
        if end == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif end == "half-close":
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(1) == b"", "server sent something nobody asked for"
        elif isinstance(end, tuple):
            announced, sent = end
            conn.sendall(b"\x01" if announced < 0 else announced.to_bytes(2, "big") + bytes(sent))
    finally:
        conn.close()
        model.disconnect()
    assert rig.proc.poll() is None, "myna-emu serve died"


def test_state_file_loads_and_matches_the_model_after_fuzzing(rig: Rig, tmp_path: Path) -> None:
    # Runs after the fuzz test (same module-scoped rig; -p no:randomly keeps the order, and
    # under random order it simply checks a shorter history).
    assert rig.proc.poll() is None
    copy = tmp_path / "copy.db"
    copy_card(rig.state, copy)
    on_disk = Card.open(copy).state.pins
    for name, record in rig.model.card.state.pins.items():
        assert on_disk[name].tries_left == record.tries_left, name
