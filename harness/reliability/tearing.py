"""Tearing: SIGKILL ``myna-emu serve`` mid-command, restart it on the same state file, check.

Each round starts the emulator in a vpcd slot, drives a random stream of VERIFY (right and
wrong), empty VERIFY, CHANGE REFERENCE DATA and issuer-authenticated RESET RETRY COUNTER
through pcscd (a fresh client process per round, see :mod:`harness.reliability.pump`), and
kills the emulator from another thread -- after a random number of APDUs plus a random
delay, or after a random time. Then a COPY of the state file is opened in-process (no try is
spent on the real one) and checked against a model of what the card answered:

* the state file loads, and everything but the PIN records is as issued;
* an answered command is never lost (a ``9000`` to CHANGE / RESET, a ``63Cx`` decrement);
* a counter never rose without a correct PIN or an authorised re-set;
* the command that was not answered is fully there or fully absent: the PIN holds the old
  value or the new one, never something else (docs/card.md#verify: decrement before compare, so a
  correct VERIFY torn mid-way may cost a try).

PIN values here are those of a throw-away TEST card this module creates; messages name them
by role ("old", "new"), never by value.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import pins
from emulator.card import Card
from emulator.personalise import new_state
from emulator.profiles import ATRS
from emulator.state import StateError
from emulator.store import SqliteStore, copy_card
from harness.reliability.slots import (
    EmulatorProcess,
    SlotBusyError,
    reader_for_slot,
    reader_state,
    wait_card_gone,
    wait_presence,
)
from harness.reliability.tearing_model import (
    POOL,
    SFI,
    WRITES,
    Model,
    Op,
    PinModel,
    command_for,
    plan_ops,
)

logger = logging.getLogger(__name__)

__all__ = ["TearingResult", "run_tearing"]

#: Seconds a pump waits for the card; a slot that takes longer is restarted (vpcd 3.3).
CONNECT_WAIT = 4.0
#: Seconds for pcscd to see the killed card gone (one presence poll is ~0.4 s).
REMOVAL_WAIT = 10.0
#: Seconds any single APDU may take before the round is declared hung.
APDU_TIMEOUT = 10.0


# --- one round ------------------------------------------------------------------------------


class _Pump:
    """The per-round client process, with a reader thread so no read blocks forever."""

    def __init__(self, reader: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.reliability.pump", reader, "--wait", str(CONNECT_WAIT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("X EOF")

    def line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return "X TIMEOUT"

    def send(self, apdu: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write(apdu.hex() + "\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class _Killer(threading.Thread):
    """SIGKILLs the emulator from another thread.

    With ``after`` > 0: a random moment inside the ``after``-th command (uniform over its
    expected duration, busy-waited: sleep() is too coarse for a millisecond); with
    ``after`` = 0: ``delay`` seconds after the first command was sent.
    """

    def __init__(self, emulator: EmulatorProcess, rng: random.Random, after: int, delay: float):
        super().__init__(daemon=True)
        self.emulator, self.rng, self.after, self.delay = emulator, rng, after, delay
        self.sent = 0
        self.cond = threading.Condition()
        self.cancelled = False
        self.armed = after == 0

    def count(self, expected: float, writes: bool) -> None:
        """A command is about to be sent; it should take about ``expected`` seconds. The
        kill targets the first command that writes state from the ``after``-th on."""
        with self.cond:
            self.sent += 1
            if self.after and self.sent >= self.after and not self.armed and writes:
                self.delay = self.rng.uniform(0, 1.3 * expected)
                self.armed = True
            self.cond.notify()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify()

    def run(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.cancelled or (self.armed and self.sent > 0), 60)
            if self.cancelled:
                return
            end = time.perf_counter() + self.delay
        while time.perf_counter() < end:
            if self.cancelled:
                return
        self.emulator.kill()


@dataclass
class TearingResult:
    kills: int = 0
    torn: dict[str, int] = field(default_factory=dict)  # unanswered command kinds
    apdus: int = 0
    checks: int = 0
    stuck: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and self.kills > 0

    def summary(self) -> str:
        torn = ", ".join(f"{k} {v}" for k, v in sorted(self.torn.items())) or "none"
        return (
            f"{self.kills} kills in {self.seconds:.1f} s, {self.apdus} APDUs answered, "
            f"{self.checks} invariant checks, {len(self.violations)} violations; "
            f"torn mid-command: {torn}; slot restarts: {self.stuck}"
        )


def _check(
    state_path: Path, workdir: Path, model: Model, torn: Op | None, issued: dict[str, object]
) -> tuple[list[str], int]:
    """Compare a copy of the state file with what the card may hold; (violations, checks)."""
    copy = workdir / "check.db"
    try:
        copy_card(state_path, copy)
        card = Card.open(copy)
    except StateError as exc:
        return [f"state file does not load: {exc}"], 1
    card.close()
    found: list[str] = []
    checks = 1
    doc = card.state.to_json()
    doc.pop("pins")
    checks += 1
    if doc != issued:
        found.append("state outside the PIN records changed")
    for name, p in model.pins.items():
        record = card.state.pins[name]
        allowed = model.outcomes(torn, name)
        candidates = {v for v, _ in allowed}
        value = next((v for v in candidates if pins.matches(record, v)), None)
        checks += 2
        if value is None:
            earlier = [v for v in model.history.get(name, []) if pins.matches(record, v)]
            if earlier:
                found.append(f"{name}: an answered change of the PIN was lost (old value back)")
            else:
                found.append(f"{name}: holds neither the old nor the new value (half-written)")
            continue
        tries = record.tries_left
        if (value, tries) in allowed:
            continue
        most = max(t for v, t in allowed if v == value) if value in candidates else p.tries
        if tries > most:
            found.append(
                f"{name}: counter rose to {tries} (at most {most} allowed) without a correct "
                f"PIN or an issuer re-set; torn command: {torn.kind if torn else 'none'}"
            )
        else:
            found.append(
                f"{name}: counter is {tries}, expected one of "
                f"{sorted(t for v, t in allowed if v == value)} (an answered decrement lost?)"
            )
    return found, checks


def _resync(model: Model, state_path: Path) -> None:
    """Take the (checked) file as the truth for the next round."""
    store = SqliteStore.open(state_path)
    try:
        state = store.load()
    finally:
        store.close()
    for name, p in model.pins.items():
        record = state.pins[name]
        for v in {p.value, *POOL[name]}:
            if pins.matches(record, v):
                p.value = v
                break
        p.tries = record.tries_left
    model.history.clear()
    model.new_session()


def run_tearing(
    kills: int,
    slot: int,
    *,
    seed: int | None = None,
    workdir: Path | None = None,
    max_apdus_before_kill: int = 40,
    deadline: float | None = None,
    progress: Callable[[TearingResult], None] | None = None,
) -> TearingResult:
    """Kill the emulator ``kills`` times in ``slot`` and check the state after each kill.

    ``deadline`` (seconds) bounds the whole run; rounds stop early when it passes.
    Raises :class:`SlotBusyError` when the slot holds someone else's card or never takes ours.
    """
    rng = random.Random(seed)
    reader = reader_for_slot(slot)
    result = TearingResult()
    started = time.monotonic()
    if not wait_presence(reader, present=False, timeout=2.0):
        raise SlotBusyError(f"{reader!r} (slot {slot}) already holds a card; not ours to use")
    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="myna-tearing-")
        workdir = Path(own_tmp.name)
    state_path = workdir / "card.db"
    state = new_state()
    Card.create(state_path, state).close()
    issued = state.to_json()
    issued.pop("pins")
    atr = ATRS[state.atr_form]
    model = Model(
        {
            n: PinModel(POOL[n][0], p.max_tries, p.max_tries)
            for n, p in ((n, state.pins[n]) for n in SFI)
        }
    )
    emulator = EmulatorProcess(slot, "--state", str(state_path), log=workdir / "emulator.log")
    latencies: dict[str, list[float]] = {}
    seen: int | None = None  # reader state while the last card was in (None: empty)
    try:
        while result.kills < kills:
            if deadline is not None and time.monotonic() - started > deadline:
                break
            # pcscd must see the killed card gone (one presence poll, ~0.4 s) before the
            # emulator comes back: a restart inside that window can leave vpcd 3.3 showing
            # the dead card for good, and a client started then finds it still "present".
            if seen is not None and not wait_card_gone(reader, seen, REMOVAL_WAIT):
                raise SlotBusyError(f"{reader!r} shows a card {REMOVAL_WAIT} s after the kill")
            emulator.start()
            pump = _Pump(reader)
            killer: _Killer | None = None
            try:
                first = pump.line(CONNECT_WAIT + 6)
                if not first.startswith("READY"):
                    result.stuck += 1
                    logger.info("slot %d did not take the card (%s); restarting", slot, first)
                    if result.stuck > max(5, kills // 4):
                        raise SlotBusyError(
                            f"{reader!r} did not take the emulator's card {result.stuck} times"
                            " (a stuck vpcd slot? see emulator/vpcd.py)"
                        )
                    continue
                seen = reader_state(reader)
                if bytes.fromhex(first.split()[1]) != atr:
                    raise SlotBusyError(f"{reader!r} shows a card with another ATR: not ours")
                if rng.random() < 0.75:
                    killer = _Killer(emulator, rng, rng.randint(1, max_apdus_before_kill), 0.0)
                else:
                    typical = (
                        statistics.mean(statistics.median(v) for v in latencies.values())
                        if latencies
                        else 0.002
                    )
                    killer = _Killer(
                        emulator, rng, 0, rng.uniform(0, max_apdus_before_kill * typical)
                    )
                killer.start()
                torn = _stream(
                    pump, killer, model, rng, result, latencies, limit=max_apdus_before_kill * 3
                )
            finally:
                if killer is not None:
                    killer.cancel()
                    killer.join(10)
                emulator.kill()
                pump.close()
            result.kills += 1
            if torn is not None:
                result.torn[torn.kind] = result.torn.get(torn.kind, 0) + 1
            found, checks = _check(state_path, workdir, model, torn, issued)
            result.checks += checks
            result.violations += [f"kill {result.kills}: {v}" for v in found]
            if found and found[0].startswith("state file does not load"):
                break  # nothing to restart on
            _resync(model, state_path)
            if progress is not None:
                progress(result)
    finally:
        emulator.kill()
        emulator.stop()
        result.seconds = time.monotonic() - started
        if own_tmp is not None:
            own_tmp.cleanup()
    return result


def _stream(
    pump: _Pump,
    killer: _Killer,
    model: Model,
    rng: random.Random,
    result: TearingResult,
    latencies: dict[str, list[float]],
    limit: int,
) -> Op | None:
    """Drive commands until the card goes away; the command left unanswered, if any."""
    planned: list[Op] = [Op("select")]
    for _ in range(limit):
        if not planned:
            planned = plan_ops(model, rng)
        op = planned.pop(0)
        apdu = command_for(model, op)
        expect = model.expect(op)
        past = latencies.get(op.kind)
        killer.count(statistics.median(past[-50:]) if past else 0.003, op.kind in WRITES)
        t0 = time.perf_counter()
        pump.send(apdu)
        line = pump.line(APDU_TIMEOUT)
        if not line.startswith("R "):
            if line == "X TIMEOUT":
                result.violations.append(f"kill {result.kills + 1}: no answer in {APDU_TIMEOUT} s")
            return op
        latencies.setdefault(op.kind, []).append(time.perf_counter() - t0)
        answer = bytes.fromhex(line[2:])
        result.apdus += 1
        if not expect(answer):
            result.violations.append(
                f"kill {result.kills + 1}: {op.kind} {op.pin} answered {answer[-2:].hex()}"
                " against the model"
            )
        model.apply(op, answer)
    return None  # the stream ended first: the kill lands between commands
