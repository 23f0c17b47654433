"""vpcd slots as the reliability runs use them: reader names, presence, server processes.

Slot ``n`` is TCP port ``35963 + n``; each reader.conf entry gives two slots. The first entry
(Debian's) names its readers ``Virtual PCD 00 0m``, the extra ones ``Virtual PCD k 00 0m``
(``ci/pcscd-start.sh``, MYNA_VPCD_EXTRA).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from emulator.vpcd import reader_name as reader_for_slot
from harness.optional import PYSCARD_MISSING, PyscardMissingError

try:
    from smartcard import scard
except ImportError:  # the [pcsc] extra is not installed: say so in one line
    raise PyscardMissingError(f"the vpcd slots {PYSCARD_MISSING}") from None

__all__ = [
    "EmulatorProcess",
    "SlotBusyError",
    "reader_for_slot",
    "reader_state",
    "rss_kib",
    "wait_card_gone",
    "wait_presence",
]


class SlotBusyError(RuntimeError):
    """The slot already holds a card (someone else's) or never takes ours."""


def _u32(code: int) -> int:
    return code & 0xFFFFFFFF


class _Context:
    """A PC/SC context of its own that never transmits: a process that transmitted to a card
    that died can make vpcd 3.3 ignore re-insertions while it runs (emulator/vpcd.py)."""

    def __enter__(self) -> Any:
        code, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if code != scard.SCARD_S_SUCCESS:
            raise RuntimeError(f"cannot reach pcscd: {scard.SCardGetErrorMessage(code)}")
        return self.context

    def __exit__(self, *exc: object) -> None:
        scard.SCardReleaseContext(self.context)


def _watch(reader: str, done: Callable[[int], bool], timeout: float) -> int | None:
    """Wait until ``done(event_state)`` holds for ``reader``; the state, or None on timeout."""
    with _Context() as context:
        deadline = time.monotonic() + timeout
        state = scard.SCARD_STATE_UNAWARE
        while (remaining := deadline - time.monotonic()) > 0:
            code, states = scard.SCardGetStatusChange(
                context, int(min(remaining, 0.5) * 1000) + 1, [(reader, state)]
            )
            if _u32(code) not in (scard.SCARD_S_SUCCESS, _u32(scard.SCARD_E_TIMEOUT)):
                raise RuntimeError(f"cannot watch {reader!r}: {scard.SCardGetErrorMessage(code)}")
            if states:
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            if state != scard.SCARD_STATE_UNAWARE and done(state):
                return int(state)
        return None


def _present(state: int) -> bool:
    return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE


def wait_presence(reader: str, present: bool, timeout: float) -> bool:
    """Wait until pcscd reports ``reader`` with (or without) a card; False on timeout."""
    return _watch(reader, lambda s: _present(s) == present, timeout) is not None


def reader_state(reader: str) -> int:
    """pcscd's event state of ``reader`` now (the upper 16 bits count card events)."""
    state = _watch(reader, lambda s: True, 2.0)
    if state is None:
        raise RuntimeError(f"no state for {reader!r}")
    return state


def wait_card_gone(reader: str, seen: int, timeout: float) -> bool:
    """Wait until the card present in state ``seen`` is gone: the reader was seen empty, or
    its event counter moved (a removal and a re-insertion can fall in one presence poll)."""
    return (
        _watch(reader, lambda s: not _present(s) or (s >> 16) != (seen >> 16), timeout) is not None
    )


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class EmulatorProcess:
    """``myna-emu serve`` in one slot, as a child process (SIGKILL-able, RSS measurable)."""

    def __init__(self, slot: int, *args: str, log: Path | None = None) -> None:
        self.slot = slot
        self.args = list(args)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[Any] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.log is not None and self._log_file is None:
            self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli_serve", *self.args, "--slot", str(self.slot)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file if self._log_file is not None else subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (a pulled plug): no signal handler runs, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit status. Idempotent."""
        status = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            status = self.proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return status
