"""The vpcd card-side server against a fake vpcd socket: framing, control codes, bad input,
broken connections, reconnection and stopping."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import pytest

from emulator.vpcd import (
    CTRL_GET_ATR,
    CTRL_POWER_OFF,
    CTRL_POWER_ON,
    CTRL_RESET,
    SW_NO_DIAGNOSIS,
    TruncatedFrameError,
    VpcdServer,
    _FrameReader,
    encode_frame,
    slot_port,
)
from harness.transport import TRAFFIC
from tests.vpcd.conftest import STANDIN_ATR, TIMEOUT, FakeVpcd, Running, StandInCard, wait_until

SELECT = bytes.fromhex("00A4040C0AD392F000260100000001")
Serve = Callable[..., Running]


def test_slot_port_and_frame_encoding() -> None:
    assert slot_port(0) == 35963
    assert slot_port(1) == 35964
    with pytest.raises(ValueError):
        slot_port(-1)
    assert encode_frame(b"\x90\x00") == b"\x00\x02\x90\x00"
    assert encode_frame(bytes(0xFFFF))[:2] == b"\xff\xff"
    with pytest.raises(ValueError):
        encode_frame(bytes(0x10000))


def test_get_atr_is_answered_other_controls_are_not(serve: Serve, vpcd: FakeVpcd) -> None:
    serve()
    # Power on and get-ATR in one segment, as vpcd writes them: exactly one answer.
    vpcd.send(b"\x00\x01\x01\x00\x01\x04")
    assert vpcd.recv_frame() == STANDIN_ATR
    vpcd.send_frame(bytes([CTRL_RESET]))
    vpcd.send_frame(bytes([CTRL_POWER_OFF]))
    vpcd.send_frame(bytes([CTRL_GET_ATR]))
    assert vpcd.recv_frame() == STANDIN_ATR


def test_control_codes_drive_the_card_power(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    serve()
    for code in (CTRL_POWER_ON, CTRL_RESET, CTRL_POWER_OFF):
        vpcd.send_frame(bytes([code]))
    assert vpcd.exchange(bytes([CTRL_GET_ATR])) == STANDIN_ATR  # all three processed
    assert card.events == ["on", "reset", "off"]


def test_apdu_answered_with_response_and_sw(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    serve()
    vpcd.send_frame(bytes([CTRL_POWER_ON]))
    assert vpcd.exchange(SELECT) == SELECT[::-1] + b"\x90\x00"
    assert card.apdus == [SELECT]


def test_apdu_to_an_unpowered_card_powers_it_first(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    serve()
    assert vpcd.exchange(b"\x00\xb0") == b"\xb0\x00\x90\x00"
    assert card.events == ["on", b"\x00\xb0"]


def test_frame_split_into_single_bytes(serve: Serve, vpcd: FakeVpcd) -> None:
    serve()
    for byte in encode_frame(SELECT):
        vpcd.send(bytes([byte]))
    assert vpcd.recv_frame() == SELECT[::-1] + b"\x90\x00"


def test_several_messages_in_one_segment(serve: Serve, vpcd: FakeVpcd, card: StandInCard) -> None:
    serve()
    apdus = [SELECT, b"\x00\x20\x00\x80", b"\x00\xb0\x00\x00\x00"]
    vpcd.send(b"".join(encode_frame(a) for a in apdus) + encode_frame(bytes([CTRL_GET_ATR])))
    for apdu in apdus:
        assert vpcd.recv_frame() == apdu[::-1] + b"\x90\x00"
    assert vpcd.recv_frame() == STANDIN_ATR
    assert card.apdus == apdus


def test_largest_frame(serve: Serve, vpcd: FakeVpcd, card: StandInCard) -> None:
    serve()
    card.response_size = 2
    apdu = b"\x00\xda\x00\x00\x00" + (0xFFFF - 7).to_bytes(2, "big") + bytes(0xFFFF - 7)
    assert len(apdu) == 0xFFFF
    assert vpcd.exchange(apdu)[-2:] == b"\x90\x00"


def test_response_too_long_to_frame_is_6f00(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    serve()
    card.response_size = 0x10002  # 65,536 data bytes + SW: an extended Le of 0000
    assert vpcd.exchange(SELECT) == SW_NO_DIAGNOSIS
    card.response_size = None
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x00", b"\x00\x01\x07", b"\x00\x01\xff", b"\x00\x01\x03"],
    ids=["empty-frame", "control-07", "control-ff", "control-03"],
)
def test_bad_frames_are_dropped_and_serving_goes_on(
    serve: Serve,
    vpcd: FakeVpcd,
    card: StandInCard,
    garbage: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="emulator.vpcd")
    serve()
    vpcd.send(garbage)
    assert vpcd.exchange(bytes([CTRL_GET_ATR])) == STANDIN_ATR  # nothing answered the garbage
    assert vpcd.exchange(SELECT) == SELECT[::-1] + b"\x90\x00"
    assert card.apdus == [SELECT]
    assert "dropped" in caplog.text


def test_card_failure_answers_6f00_and_serving_goes_on(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    serve()
    card.powered = True
    card.fail_next = True
    assert vpcd.exchange(SELECT) == SW_NO_DIAGNOSIS
    assert vpcd.exchange(SELECT) == SELECT[::-1] + b"\x90\x00"


@pytest.mark.parametrize(
    "partial",
    [b"\x00", b"\x00\x10", b"\x00\x10\x00\xa4\x04"],
    ids=["half-length", "length-only", "half-body"],
)
def test_truncated_frame_is_dropped_then_reconnects(
    serve: Serve,
    vpcd: FakeVpcd,
    card: StandInCard,
    partial: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="emulator.vpcd")
    running = serve()
    vpcd.send_frame(bytes([CTRL_POWER_ON]))
    vpcd.send(partial)
    assert vpcd.conn is not None
    vpcd.conn.close()
    vpcd.accept()  # the card comes back by itself
    assert card.apdus == []  # the partial APDU never reached the card
    assert card.events == ["on", "off"]  # removal took the power away
    assert "stream ended after" in caplog.text
    assert vpcd.exchange(SELECT) == SELECT[::-1] + b"\x90\x00"
    assert running.server.connections == 2


def test_connection_reset_mid_session_reconnects(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    serve()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"
    assert vpcd.conn is not None
    # SO_LINGER 0: close with RST, as a crashing pcscd would.
    vpcd.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    vpcd.conn.close()
    vpcd.accept()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"
    assert card.events == ["on", SELECT, "off", "on", SELECT]


def test_waits_for_vpcd_then_connects(
    serve: Serve, card: StandInCard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="emulator.vpcd")
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on `port` now
    running = serve(accept=False, port=port)
    wait_until(lambda: "waiting for vpcd at 127.0.0.1:" in caplog.text, what="the waiting log")
    assert not running.server.connected.is_set()
    late = FakeVpcd.__new__(FakeVpcd)
    late.listener = socket.create_server(("127.0.0.1", port))
    late.listener.settimeout(5)
    late.port, late.conn = port, None
    try:
        late.accept()
        assert late.exchange(bytes([CTRL_GET_ATR])) == STANDIN_ATR
        assert caplog.text.count("waiting for vpcd") == 1  # said once, not per retry
    finally:
        running.stop()
        late.close()


def test_stop_while_idle_returns_and_powers_off(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    running = serve()
    vpcd.send_frame(bytes([CTRL_POWER_ON]))
    assert vpcd.exchange(bytes([CTRL_GET_ATR])) == STANDIN_ATR
    running.stop()
    vpcd.assert_closed_by_card()
    assert card.events == ["on", "off"]


def test_stop_finishes_the_exchange_in_hand(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    running = serve()
    card.powered = True
    card.block = threading.Event()
    vpcd.send_frame(SELECT)
    assert card.in_transmit.wait(5)
    stopper = threading.Thread(target=running.stop)
    stopper.start()
    wait_until(lambda: running.server.stopping, what="stop() to be requested")
    card.block.set()
    assert vpcd.recv_frame() == SELECT[::-1] + b"\x90\x00"  # the answer still went out
    stopper.join(5)
    assert not running.thread.is_alive()
    vpcd.assert_closed_by_card()


def test_stop_while_waiting_for_vpcd(serve: Serve) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    running = serve(accept=False, port=port)
    running.stop()  # the fixture would stop it too; here it must return promptly


def test_power_lost_mid_command_pulls_the_card(
    serve: Serve, vpcd: FakeVpcd, card: StandInCard
) -> None:
    running = serve()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"
    card.tear_next = True
    vpcd.send_frame(SELECT)
    vpcd.assert_closed_by_card()  # no answer: the reader sees the card go away
    vpcd.accept()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"  # powered up again on re-insertion
    assert running.server.connections == 2


def test_swap_card_keeps_the_connection(serve: Serve, vpcd: FakeVpcd, card: StandInCard) -> None:
    running = serve()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"
    other = StandInCard()
    assert running.server.swap_card(other) is card
    assert card.events[-1] == "off"
    assert vpcd.exchange(b"\x00\x84\x00\x00\x08") == b"\x08\x00\x00\x84\x00\x90\x00"
    assert other.events == ["on", b"\x00\x84\x00\x00\x08"]
    assert running.server.connections == 1


def test_traffic_log_redacts_pins(
    serve: Serve, vpcd: FakeVpcd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(TRAFFIC, logger="emulator.vpcd")
    serve()
    vpcd.exchange(bytes.fromhex("00200080043132333400"))
    vpcd.exchange(SELECT)
    assert "00200080 04 <redacted 4 bytes> 00" in caplog.text
    assert "31323334" not in caplog.text
    assert SELECT.hex().upper() in caplog.text


def test_no_traffic_below_the_traffic_level(
    serve: Serve, vpcd: FakeVpcd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="emulator.vpcd")
    serve()
    vpcd.exchange(SELECT)
    assert SELECT.hex().upper() not in caplog.text


def test_server_is_usable_without_a_thread_of_its_own() -> None:
    """handle() is the whole protocol: usable by a selector loop as well as by serve()."""
    card = StandInCard()
    server = VpcdServer(card, port=1)
    assert server.handle(bytes([CTRL_GET_ATR])) == encode_frame(STANDIN_ATR)
    assert server.handle(b"") is None
    assert server.handle(bytes([CTRL_POWER_ON])) is None
    assert server.handle(b"\x00\xb0") == encode_frame(b"\xb0\x00\x90\x00")


class ScriptedSocket:
    """Hands out the given chunks, one per recv(), then end of stream; counts QUICKACKs."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.quickacks = 0
        self.recvs = 0

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        return self.chunks.pop(0) if self.chunks else b""

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option == getattr(socket, "TCP_QUICKACK", None):
            self.quickacks += 1


def _reader(chunks: list[bytes]) -> tuple[_FrameReader, ScriptedSocket]:
    sock = ScriptedSocket(chunks)
    return _FrameReader(sock), sock  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", range(1, len(SELECT) + 5))
def test_reader_reassembles_frames_cut_anywhere(cut: int) -> None:
    stream = encode_frame(SELECT) + encode_frame(b"\x04")
    reader, _ = _reader([stream[:cut], stream[cut:]])
    assert reader.read_frame() == SELECT
    assert reader.read_frame() == b"\x04"
    assert reader.read_frame() is None


@pytest.mark.parametrize("cut", range(3, len(SELECT) + 2))
def test_reader_length_segment_then_a_body_in_pieces(cut: int) -> None:
    """vpcd's usual pattern (the length alone, then the body), with the body cut anywhere."""
    stream = encode_frame(SELECT) + encode_frame(b"\x04")
    reader, _ = _reader([stream[:2], stream[2:cut], stream[cut:]])
    assert reader.read_frame() == SELECT
    assert reader.read_frame() == b"\x04"
    assert reader.read_frame() is None


def test_reader_reads_length_and_body_with_one_recv_each() -> None:
    frames = [SELECT, b"\x04", b"\x00\xb0"]
    chunks = [piece for f in frames for piece in (encode_frame(f)[:2], encode_frame(f)[2:])]
    reader, sock = _reader(chunks)
    assert [reader.read_frame() for _ in frames] == frames
    assert sock.recvs == len(chunks)


def test_reader_one_byte_per_recv_rearms_quickack_every_time() -> None:
    stream = encode_frame(SELECT)
    reader, sock = _reader([bytes([b]) for b in stream])
    assert reader.read_frame() == SELECT
    if hasattr(socket, "TCP_QUICKACK"):
        assert sock.quickacks == sock.recvs == len(stream)


@pytest.mark.parametrize("cut", range(1, len(SELECT) + 2))
def test_reader_truncated_stream(cut: int) -> None:
    reader, _ = _reader([encode_frame(SELECT)[:cut]])
    with pytest.raises(TruncatedFrameError):
        reader.read_frame()


def test_eject_pulls_the_card_until_insert(serve: Serve, vpcd: FakeVpcd) -> None:
    running = serve()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"
    running.server.eject()
    vpcd.assert_closed_by_card()
    wait_until(lambda: not running.server.connected.is_set(), what="the card out")
    vpcd.listener.settimeout(0.3)
    with pytest.raises(TimeoutError):
        vpcd.accept()  # stays out: no new connection while ejected
    assert not running.server.present
    vpcd.listener.settimeout(TIMEOUT)
    running.server.insert()
    vpcd.accept()
    assert vpcd.exchange(SELECT)[-2:] == b"\x90\x00"
    assert running.server.connections == 2
