"""Real clients against ``myna-emu serve``: the card in vpcd slot 2, OpenSC as subprocesses.

Slot 2 ("Virtual PCD 1 00 00") belongs to these tests alone; the other slots are other
suites'. Each test gets its own state file and its own ``myna-emu serve`` process, started
with ``-vv`` so the (PIN-redacted) APDU traffic can be checked, and stopped with SIGTERM.

OpenSC is never run with debug logging (``OPENSC_DEBUG`` is removed from its environment):
at high levels it logs APDUs, PINs included.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from smartcard import scard

from emulator.card import Card
from emulator.vpcd import reader_name
from tests.support import slots
from tests.support.cards import fresh_state
from tests.support.pcscd import ensure_pcscd, in_ci

#: vpcd slot of these tests (port 35963 + 2) and the reader pcscd shows for it.
SLOT = 2
READER = reader_name(SLOT)
#: pcscd polls presence every ~0.4 s; OpenSC runs take well under a second here.
CARD_TIMEOUT = 15.0
TOOL_TIMEOUT = 60.0

TOOLS = ("opensc-tool", "pkcs15-tool", "pkcs11-tool")
PKCS11_MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/local/lib/opensc-pkcs11.so",
)
MYNA_EMU = Path(sys.executable).with_name("myna-emu")
_TRAFFIC = re.compile(r"TRAFFIC emulator\.vpcd: \S+ ([<>]) (.*)$")


def _missing(what: str) -> None:
    """Skip, or fail under CI, where these tests must run."""
    if in_ci():
        pytest.fail(f"CI is set but {what}", pytrace=False)
    pytest.skip(what)


#: OpenSC sees only this module's reader: other tests may leave JPKI cards in other vpcd
#: slots (the behaviour suite keeps one in slot 0), and pkcs11-tool picks a token by label,
#: so with two JPKI cards inserted it could log in to the wrong one.
OPENSC_CONF = Path(tempfile.gettempdir()) / f"myna-hil-opensc-slot{SLOT}.conf"


def _opensc_conf() -> Path:
    others = ", ".join(f'"{reader_name(n)}"' for n in range(16) if n != SLOT)
    OPENSC_CONF.write_text(f"app default {{\n\tignored_readers = {others};\n}}\n")
    return OPENSC_CONF


def opensc_env() -> dict[str, str]:
    """The environment for OpenSC tools: never with debug logging (it would log PINs), and
    only this module's reader."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSC_DEBUG")}
    env["LC_ALL"] = "C"
    env["OPENSC_CONF"] = str(_opensc_conf())
    return env


def run(*argv: str, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a real program to completion (bounded), capturing text output."""
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        env=opensc_env(),
        check=False,
    )


@pytest.fixture(scope="session")
def opensc() -> None:
    """OpenSC's tools are installed (ci/install-system.sh installs them)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        _missing(f"OpenSC tools not installed: {', '.join(missing)} (package opensc)")


@pytest.fixture(scope="session")
def pkcs11_module(opensc: None) -> str:
    """Path of OpenSC's PKCS#11 module."""
    for path in PKCS11_MODULES:
        if Path(path).exists():
            return path
    _missing("opensc-pkcs11.so not found (package opensc-pkcs11)")
    raise AssertionError("unreachable")


def myna_emu() -> str:
    if MYNA_EMU.exists():
        return str(MYNA_EMU)
    found = shutil.which("myna-emu")
    if found is None:
        _missing("the myna-emu command is not installed (pip install -e .)")
    assert found is not None
    return found


def _card_present() -> bool:
    """Whether pcscd reports a card in READER, asked without connecting to it.

    Connecting powers the card up; doing that while the emulator is being stopped can make a
    command hit the dead socket, after which vpcd 3.3 may stop reporting re-insertions to
    this process (see tests/vpcd/test_e2e.py). A status query touches no card.
    """
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        pytest.fail(f"no PC/SC context: {scard.SCardGetErrorMessage(hresult)}", pytrace=False)
    try:
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(READER, scard.SCARD_STATE_UNAWARE)]
        )
    finally:
        scard.SCardReleaseContext(context)
    if hresult != scard.SCARD_S_SUCCESS:
        pytest.fail(
            f"pcscd cannot report reader {READER!r} (slot {SLOT}): "
            f"{scard.SCardGetErrorMessage(hresult)}; start pcscd with MYNA_VPCD_EXTRA=2 "
            "bash ci/pcscd-start.sh",
            pytrace=False,
        )
    _, event_state, _ = states[0]
    return bool(event_state & scard.SCARD_STATE_PRESENT)


def _wait(predicate: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + CARD_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            tail = "\n".join(
                line
                for line in log.read_text(errors="replace").splitlines()
                if " TRAFFIC " not in line
            )[-3000:]
            pytest.fail(
                f"{what} in {READER!r} within {CARD_TIMEOUT}s. If no card ever appears, the "
                "running pcscd may share one vpcd driver between reader.conf entries (only the "
                "last entry's ports are then polled): restart it through ci/pcscd-start.sh, "
                f"which gives each entry its own driver copy. myna-emu serve said:\n{tail}",
                pytrace=False,
            )
        time.sleep(0.1)


@dataclass
class Served:
    """A card state file served into slot 2 by a ``myna-emu serve`` process."""

    state: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        with self.log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [myna_emu(), "serve", "--state", str(self.state), "--slot", str(SLOT), "-vv"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        _wait(self._present_or_dead, "the served card did not appear", self.log)

    def _present_or_dead(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(
                f"myna-emu serve exited ({self.proc.returncode}):\n{self.log.read_text()}",
                pytrace=False,
            )
        return _card_present()

    def stop(self) -> int:
        """SIGTERM, as a user would stop it; the exit status. Waits for the slot to empty."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
            pytest.fail("myna-emu serve did not stop on SIGTERM", pytrace=False)
        _wait(lambda: not _card_present(), "the card was not removed", self.log)
        return status

    def card(self) -> Card:
        """The card as stored now (every VERIFY is durable before its answer leaves)."""
        return Card.open(self.state)

    def traffic(self) -> list[tuple[str, str]]:
        """APDU traffic so far: ("<", response hex) / (">", redacted command hex)."""
        found: list[tuple[str, str]] = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = _TRAFFIC.search(line)
            if match:
                found.append((match.group(1), match.group(2).strip()))
        return found

    def exchanges(self) -> list[tuple[str, str]]:
        """(command, response) pairs in order."""
        pairs: list[tuple[str, str]] = []
        command: str | None = None
        for direction, text in self.traffic():
            if direction == ">":
                command = text
            elif command is not None:
                pairs.append((command, text))
                command = None
        return pairs


@pytest.fixture(scope="session")
def pcscd() -> None:
    ensure_pcscd()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """A new standard card (default PINs: auth 1234, sign ABC123) in a state file."""
    path = tmp_path / "card.db"
    Card.create(path, fresh_state()).close()
    return path


@pytest.fixture
def slot_lock() -> Iterator[None]:
    """Exclusive use of slot 2 for one test, across processes (bounded wait)."""
    with slots.slot_lock(SLOT):
        yield


@pytest.fixture
def served(pcscd: None, slot_lock: None, state_file: Path, tmp_path: Path) -> Iterator[Served]:
    """The state file, not yet served: call ``start()`` (after preparing the state)."""
    server = Served(state_file, tmp_path / "serve.log")
    yield server
    if server.proc is not None:
        server.stop()


def myna_apdu(state: Path, *apdus: str) -> list[str]:
    """Send APDUs to the card in *state* with ``myna-emu apdu`` (no reader); the responses."""
    result = run(myna_emu(), "apdu", "--state", str(state), *apdus)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()
