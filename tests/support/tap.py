"""The tap's test bench: an emulator that plays the physical card in one vpcd slot, the tap
(the real ``myna-hil tap`` process) serving another, and helpers for apps on both readers.

Slots 4 and 5 (two readers of one reader.conf entry; ``myna-hil soak`` drives them too):
every user holds both slot locks (``tests.support.slots``), lower slot first.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from smartcard import scard
from smartcard.System import readers

from emulator.vpcd import reader_name
from tests.emulator.apdus import JPKI, JUKI, TEXT, select_app, select_ef, verify
from tests.support.slots import slot_lock

#: The emulator ("the physical card") and the tap's own slot.
CARD_SLOT, TAP_SLOT = 4, 5
CARD_READER, TAP_READER = reader_name(CARD_SLOT), reader_name(TAP_SLOT)
BIN = Path(sys.executable).parent
#: pcscd polls presence every ~0.4 s; the tap looks every 0.2 s.
TIMEOUT = 15.0

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
DIGEST_INFO = SHA256_DIGEST_INFO + hashlib.sha256(b"tap").digest()

#: A session as an app runs it: select, read a certificate, counters, a wrong signing
#: password and the right one, log in, sign, other applications' counters. It ends with the
#: counters where they began, and no answer in it is random, so two runs on one card answer
#: the same bytes. Nothing in it comes near the default floor.
SESSION = [
    select_app(JPKI),
    select_ef(0x000A),
    "00B0000004",
    "00B0000000",
    verify(p2=0x98),
    verify(p2=0x9B),
    verify("abc123", p2=0x9B),
    verify("ABC123", p2=0x9B),
    verify("1234", p2=0x98),
    select_ef(0x0017),
    f"802A0080{len(DIGEST_INFO):02X}{DIGEST_INFO.hex()}00",
    select_app(TEXT),
    verify(p2=0x91),
    "00CA5F5100",
    select_app(JUKI),
    verify(p2=0x9C),
]


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.05)


def card_present(reader: str) -> bool:
    """Whether pcscd reports a card in *reader*, asked without connecting to it."""
    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert code == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(code)
    try:
        code, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
    finally:
        scard.SCardReleaseContext(context)
    assert code == scard.SCARD_S_SUCCESS, (
        f"pcscd cannot report {reader!r}: {scard.SCardGetErrorMessage(code)}; start it with "
        "MYNA_VPCD_EXTRA=3 bash ci/pcscd-start.sh"
    )
    return bool(states[0][1] & scard.SCARD_STATE_PRESENT)


@contextmanager
def both_slots() -> Iterator[None]:
    with slot_lock(CARD_SLOT), slot_lock(TAP_SLOT):
        yield


@dataclass
class Proc:
    """A child process with its output in files (no pipe to fill up)."""

    argv: list[str]
    directory: Path
    name: str
    proc: subprocess.Popen[bytes] | None = None
    status: int | None = None

    @property
    def out_path(self) -> Path:
        return self.directory / f"{self.name}.out"

    @property
    def err_path(self) -> Path:
        return self.directory / f"{self.name}.err"

    def start(self) -> None:
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    def running(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            pytest.fail(
                f"{self.name} exited ({None if self.proc is None else self.proc.returncode}):"
                f"\n{self.err()}",
                pytrace=False,
            )
        return True

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send *sig* (SIGTERM, as a user would stop it) and wait; the exit status."""
        if self.proc is None:
            assert self.status is not None
            return self.status
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            self.status = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
            pytest.fail(f"{self.name} did not stop on signal {sig}:\n{self.err()}", pytrace=False)
        return self.status

    def out(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Bench:
    """The emulator card (its state file) in CARD_SLOT, and the tap in TAP_SLOT."""

    state: Path
    directory: Path
    card: Proc | None = None
    tap: Proc | None = None
    trace: Path = field(init=False)

    def __post_init__(self) -> None:
        self.trace = self.directory / "app.jsonl"

    def serve(self) -> None:
        """Put the card into its reader (``myna-emu serve``) and wait for pcscd to see it.

        The reader must be empty first: a card there is another suite's (one that does not
        take the slot locks), and would be taken for this one.
        """
        wait_until(lambda: not card_present(CARD_READER), f"{CARD_READER!r} to be free")
        argv = [str(BIN / "myna-emu"), "serve", "--state", str(self.state)]
        self.card = Proc([*argv, "--slot", str(CARD_SLOT)], self.directory, "serve")
        self.card.start()
        wait_until(
            lambda: self.card is not None and self.card.running() and card_present(CARD_READER),
            f"the card in {CARD_READER!r}",
        )

    def pull(self) -> int:
        """Stop the emulator: the card leaves its reader; wait for pcscd to see it gone."""
        assert self.card is not None
        status = self.card.stop()
        self.card = None
        wait_until(lambda: not card_present(CARD_READER), f"{CARD_READER!r} to empty")
        return status

    def start_tap(self, *extra: str, wait: bool = True) -> Proc:
        argv = [
            str(BIN / "myna-hil"),
            "tap",
            "--reader",
            CARD_READER,
            "--slot",
            str(TAP_SLOT),
            "--trace",
            str(self.trace),
            *extra,
        ]
        wait_until(lambda: not card_present(TAP_READER), f"{TAP_READER!r} to be free")
        self.tap = Proc(argv, self.directory, "tap")
        self.tap.start()
        if wait:
            # Up (its first line printed, to stdout or, with --json -, stderr) and its card in.
            wait_until(
                lambda: (
                    self.tap is not None
                    and self.tap.running()
                    and "myna-hil tap: " in self.tap.out() + self.tap.err()
                    and card_present(TAP_READER)
                ),
                f"the tap's card in {TAP_READER!r}",
            )
        return self.tap

    def stop_tap(self, sig: int = signal.SIGTERM) -> int:
        assert self.tap is not None
        status = self.tap.stop(sig)
        wait_until(lambda: not card_present(TAP_READER), f"{TAP_READER!r} to empty")
        return status

    def close(self) -> None:
        if self.tap is not None and self.tap.proc is not None:
            self.tap.stop()
        if self.card is not None:
            self.card.stop()
        wait_until(
            lambda: not card_present(TAP_READER) and not card_present(CARD_READER),
            "both slots to empty",
        )


@contextmanager
def bench(state: Path, directory: Path) -> Iterator[Bench]:
    """Both slots locked; the card served; the tap not started yet."""
    with ExitStack() as stack:
        stack.enter_context(both_slots())
        b = Bench(state, directory)
        stack.callback(b.close)
        b.serve()
        yield b


class App:
    """A plain pyscard app on one reader: what vendors write (``createConnection``)."""

    def __init__(self, reader: str) -> None:
        (found,) = [r for r in readers() if str(r) == reader]
        self.connection = found.createConnection()
        self.connection.connect()

    def send(self, apdu: str) -> bytes:
        data, sw1, sw2 = self.connection.transmit(list(bytes.fromhex(apdu)))
        return bytes([*data, sw1, sw2])

    def close(self) -> None:
        self.connection.disconnect()


def tool_env(slot: int) -> dict[str, str]:
    """OpenSC sees only the reader of *slot* (other suites leave JPKI cards in other slots)
    and never logs (debug logs would show PINs)."""
    conf = Path(tempfile.gettempdir()) / f"myna-hil-opensc-tap-slot{slot}.conf"
    others = ", ".join(f'"{reader_name(n)}"' for n in range(16) if n != slot)
    conf.write_text(f"app default {{\n\tignored_readers = {others};\n}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSC_DEBUG")}
    env.update(LC_ALL="C", OPENSC_CONF=str(conf))
    return env
