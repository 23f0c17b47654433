"""``myna-emu serve`` with several slots: one process per slot, one parent that owns them.

A card's work is Python and holds the GIL, so slots served from threads of one process take
turns (an RSA signature in one slot stalls every other slot for its whole length). Here each
slot gets a process of its own, and the parent

- starts them and waits until each has its card open (a card that cannot be opened is one
  line and exit status 2, as in a single process);
- turns SIGINT / SIGTERM into a SIGTERM for every child: each finishes the exchange in hand,
  closes its card (a durable card is already saved) and removes it from the reader. Children
  ignore SIGINT themselves, so Ctrl-C in a terminal goes through the parent only;
- ends the whole serve when a child ends unasked (a crash, a kill): one ERROR line naming the
  slot and how its process ended, the other slots stopped as above, exit status 1. A card is
  not restarted behind the user's back: a memory card would come back as another card;
- owns the logging: children send their records through a queue to the parent's handlers.
  Records are formatted in the child (``QueueHandler``), so what crosses the process boundary
  is the line the parent prints, already redacted where the record was made
  (``emulator.redact``): no APDU data, PIN or key object is pickled.

A child whose parent dies (SIGKILL) notices within 0.2 s and stops the same way.

Children are forked (``multiprocessing``, *fork*): they start from the modules the parent has
imported, so a slot is up as soon as its card is open, without a second interpreter start-up
(about a second on a busy machine). The parent forks before it opens any card or starts any
thread, with SIGINT / SIGTERM blocked so that no child runs the parent's handler.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from emulator.card import Card
from emulator.echo import EchoCard
from emulator.state import StateError
from emulator.vpcd import VirtualCard, VpcdServer

logger = logging.getLogger(__name__)

__all__ = ["CardKind", "CardOpenError", "SlotSpec", "close_card", "open_card", "run_workers"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: How often a waiting process looks up from its wait (signals, a dead parent).
_POLL = 0.2
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

CardKind = Literal["echo", "echo-sized", "memory", "state"]


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """What one slot serves: the card (kind, profile for ``memory``, file for ``state``)
    and where vpcd listens. Small and picklable: it is all a slot's process gets."""

    kind: CardKind
    host: str
    port: int
    profile: str = "standard"
    state: Path | None = None


class CardOpenError(Exception):
    """The slot's card cannot be opened; the message is one line for the user."""


def open_card(spec: SlotSpec) -> VirtualCard:
    """The card *spec* describes (``CardOpenError`` with a one-line message)."""
    if spec.kind in ("echo", "echo-sized"):
        return EchoCard(sized=spec.kind == "echo-sized")
    if spec.kind == "memory":
        return Card.memory(spec.profile)
    assert spec.state is not None
    try:
        return Card.open(spec.state)
    except (StateError, OSError) as exc:
        raise CardOpenError(f"cannot open card state {spec.state}: {exc}") from None


def close_card(card: VirtualCard) -> None:
    """Close *card* if it has a ``close`` (a durable card saves); log, never raise."""
    close = getattr(card, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        logger.exception("closing the card failed; its state may not be saved")


# -- the child ---------------------------------------------------------------------------


def _child_main(spec: SlotSpec, level: int, log_queue: Any, status: Any) -> None:
    """A slot's process: open the card, say so, serve until SIGTERM or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # nothing to save until the card is open
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(log_queue))
    root.setLevel(level)
    try:
        card = open_card(spec)
    except CardOpenError as exc:
        status.send(("error", str(exc)))
        sys.exit(EXIT_USAGE)
    server = VpcdServer(card, spec.host, spec.port)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
    thread = threading.Thread(target=server.serve, name=f"vpcd-{spec.port}", daemon=True)
    thread.start()
    status.send(("ready", ""))
    status.close()
    parent = multiprocessing.parent_process()
    try:
        while thread.is_alive():
            thread.join(_POLL)
            if parent is not None and not parent.is_alive() and not server.stopping:
                logger.error("slot at %s: the serve process is gone; stopping", server.address)
                server.stop()
    finally:
        close_card(server.card)
    sys.exit(EXIT_OK if server.stopping else EXIT_FAILURE)


# -- the parent --------------------------------------------------------------------------


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "is still running"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class _Slot:
    def __init__(self, spec: SlotSpec, process: Any, status: Any) -> None:
        self.spec = spec
        self.process = process
        self.status = status  # the parent's end of the child's status pipe (None once read)
        self.ready = False

    @property
    def address(self) -> str:
        return f"{self.spec.host}:{self.spec.port}"


class _Supervisor:
    def __init__(self, specs: Sequence[SlotSpec], level: int) -> None:
        self.specs = list(specs)
        self.level = level
        self.context = multiprocessing.get_context("fork")
        self.slots: list[_Slot] = []
        self.stopping = False
        self.status = EXIT_OK
        self.usage_error: str | None = None

    def stop_all(self) -> None:
        self.stopping = True
        for slot in self.slots:
            if slot.process.exitcode is None:
                slot.process.terminate()  # SIGTERM: the child stops after the exchange in hand

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            logger.info("%s: stopping after the exchange in hand", signal.Signals(signum).name)
        self.stop_all()

    def start(self, log_queue: Any) -> None:
        """Fork one child per slot (stop signals held back meanwhile: see the module doc)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self._start(log_queue)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def _start(self, log_queue: Any) -> None:
        for spec in self.specs:
            receive, send = self.context.Pipe(duplex=False)
            process = self.context.Process(
                target=_child_main,
                args=(spec, self.level, log_queue, send),
                name=f"myna-emu serve {spec.host}:{spec.port}",
            )
            process.start()
            send.close()
            self.slots.append(_Slot(spec, process, receive))
            logger.debug("slot at %s: process %d", self.slots[-1].address, process.pid)

    def _read_status(self, slot: _Slot) -> None:
        try:
            kind, message = slot.status.recv()
        except (EOFError, OSError):
            kind, message = "gone", ""
        slot.status.close()
        slot.status = None
        if kind == "ready":
            slot.ready = True
        elif kind == "error" and self.usage_error is None:
            self.usage_error = message
            self.stop_all()

    def _ended(self, slot: _Slot) -> None:
        if self.stopping:
            return
        code = slot.process.exitcode
        logger.error(
            "slot at %s: its card process %s; stopping the other slots",
            slot.address,
            _how_it_ended(code),
        )
        self.status = EXIT_FAILURE
        self.stop_all()

    def wait(self) -> None:
        """Until every child has ended; reacts to readiness, errors and deaths."""
        watched: dict[Any, tuple[str, _Slot]] = {}
        for slot in self.slots:
            watched[slot.status] = ("status", slot)
            watched[slot.process.sentinel] = ("ended", slot)
        while watched:
            for ready in multiprocessing.connection.wait(list(watched), timeout=_POLL):
                what, slot = watched.pop(ready)
                if what == "status":
                    self._read_status(slot)
                    continue
                if slot.status is not None:  # ended before it said anything
                    watched.pop(slot.status, None)
                    self._read_status(slot)
                slot.process.join()
                self._ended(slot)


def run_workers(specs: Sequence[SlotSpec], level: int) -> int:
    """Serve each of *specs* in a process of its own until SIGINT / SIGTERM; exit status.

    *level* is the log level of the children (the parent's handlers print their records).
    """
    supervisor = _Supervisor(specs, level)
    log_queue = supervisor.context.Queue()
    listener = logging.handlers.QueueListener(
        log_queue, *logging.getLogger().handlers, respect_handler_level=True
    )
    previous = {sig: signal.signal(sig, supervisor.on_signal) for sig in _STOP_SIGNALS}
    listening = False
    try:
        supervisor.start(log_queue)
        listener.start()  # a thread: only once every child is forked
        listening = True
        supervisor.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        supervisor.stop_all()
        for slot in supervisor.slots:
            slot.process.join()
        if listening:
            listener.stop()
        log_queue.close()
        log_queue.join_thread()
    if supervisor.usage_error is not None:
        print(f"myna-emu serve: {supervisor.usage_error}", file=sys.stderr)
        return EXIT_USAGE
    return supervisor.status
