"""One served slot as the panel sees it: its trace, its decoded log and its card's status.

The trace and the log are touched only in the panel's event-loop thread (vpcd events are
handed over in order); the card is read and changed only under the server's card lock
(:meth:`VpcdServer.exclusive`), in a worker thread. Commands are kept redacted, as in every
trace: no PIN reaches the page, the event stream or the downloaded trace.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any

from emulator.card import Card
from emulator.grammar import tries_left
from emulator.profiles import ATRS, PROFILES
from emulator.protocol import PIN_ORDER, SPECS
from emulator.state import Quirks
from emulator.vpcd import VPCD_BASE_PORT, VpcdEvent, VpcdServer, reader_name
from harness.trace.decode import CommandKind
from harness.trace.explain import PIN_LABELS, Cause, explain
from harness.trace.recorder import TraceLog
from harness.trace.records import Cmd, Rsp

__all__ = ["CAUSE_WORDS", "PIN_ORDER", "Message", "SlotPanel", "options"]

Message = dict[str, Any]

#: The forensics' causes in the panel's few words (the detail follows them).
CAUSE_WORDS: dict[Cause, str] = {
    Cause.USER_WRONG: "wrong value",
    Cause.APP_TRANSFORM: "transformed value",
    Cause.OTHER_APPLICATION: "other application's value",
    Cause.AUTO_RETRY: "app retry",
    Cause.TEARING: "power loss",
    Cause.STATUS_MISREAD: "status misread",
}
#: Entries the page keeps per slot (the trace download has everything).
LOG_ENTRIES = 1000
#: Records a slot's trace keeps before it drops its older half (a panel may run for days).
MAX_RECORDS = 50_000
_PIN_COMMANDS = (
    CommandKind.VERIFY,
    CommandKind.CHANGE,
    CommandKind.RESET_NEW_VALUE,
    CommandKind.RESET_UNBLOCK,
)


def options() -> Message:
    """What the page offers to choose from (profiles, ATR forms, quirks, PIN labels)."""
    return {
        "profiles": [str(p) for p in PROFILES],
        "atr_forms": list(ATRS),
        "quirks": list(vars(Quirks())),
        "pins": {name: PIN_LABELS[name] for name in PIN_ORDER},
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class SlotPanel:
    """The panel's view of one :class:`VpcdServer` (slot *index* of this process)."""

    def __init__(self, index: int, server: VpcdServer) -> None:
        self.index = index
        self.server = server
        slot = server.port - VPCD_BASE_PORT
        self.reader = reader_name(slot) if slot >= 0 else f"vpcd port {server.port}"
        self.trace = TraceLog(
            f"vpcd:{self.reader}", server.card.atr, meta={"scenario": "control-panel"}
        )
        self.log: deque[Message] = deque(maxlen=LOG_ENTRIES)
        #: PIN -> its last change: what (``text``), why (``cause``), when (``time``).
        self.last_change: dict[str, Message] = {}
        self._tries: dict[str, int] = {}
        self._accounted: set[str] = set()
        #: PINs whose counter moved with nothing of ours behind it, seen once (merge()).
        self._unexplained: set[str] = set()

    # --- what happened (event-loop thread) ---------------------------------------------------

    def on_event(self, event: VpcdEvent) -> Message:
        """The log entry for one vpcd event; the trace gets its records."""
        if event.kind != "exchange":
            if event.kind in ("power-on", "reset"):
                self.trace.reset(self.server.card.atr)
            else:
                self.trace.note("vpcd", event.kind)
            return self._entry({"kind": "event", "event": event.kind})
        cmd = self.trace.command(event.command)
        answer: Rsp | None = None
        sw_name: str | None
        if event.response is None:
            latency = self.trace.lost(
                cmd.i, event.command, "card lost power", event.latency
            ).latency_ms
            sw, sw_name = "lost", "no answer: the card lost power"
        else:
            answer = self.trace.answer(cmd.i, event.command, event.response, event.latency)
            latency = answer.latency_ms
            sw, sw_name = f"{answer.sw:04X}", answer.sw_name
        entry: Message = {
            "kind": "apdu",
            "i": cmd.i,
            "name": cmd.name,
            "hex": cmd.hex,
            "app": cmd.app,
            "ef": None if cmd.ef is None else f"{cmd.ef:04X}",
            "pin": cmd.pin,
            "sw": sw,
            "sw_name": sw_name,
            "latency_ms": latency,
        }
        change = self._pin_change(cmd, answer)
        if change is not None and cmd.pin is not None:
            entry.update(change)
            self.last_change[cmd.pin] = {**change, "time": _now()}
            self._accounted.add(cmd.pin)
        self._trim()
        return self._entry(entry)

    def on_control(
        self, action: str, text: str, pin: str | None = None, tries: int | None = None
    ) -> Message:
        """Record a control (a click on the page) in the trace and the log."""
        self.trace.control("panel", action, pin=pin, tries=tries)
        if pin is not None:
            self.last_change[pin] = {"text": text, "cause": "control", "time": _now()}
            self._accounted.add(pin)
        return self._entry({"kind": "control", "action": action, "text": text, "pin": pin})

    def _entry(self, entry: Message) -> Message:
        entry = {"slot": self.index, "time": _now(), **entry}
        self.log.appendleft(entry)
        return entry

    def _pin_change(self, cmd: Cmd, answer: Rsp | None) -> Message | None:
        """What *cmd* (answered with *answer*, ``None``: power lost) did to its PIN."""
        what = cmd.kind
        if cmd.pin is None or what not in _PIN_COMMANDS:
            return None
        if answer is not None and answer.sw == 0x9000:
            text = {
                CommandKind.VERIFY: "correct value: tries restored",
                CommandKind.CHANGE: "changed (CHANGE REFERENCE DATA)",
            }.get(what, "re-set (RESET RETRY COUNTER)")
            return {"text": text, "cause": "ok"}
        if what is not CommandKind.VERIFY or (answer is not None and tries_left(answer.sw) is None):
            return None
        finding = next((f for f in explain(self.trace.records).findings if f.index == cmd.i), None)
        if finding is None:
            return None
        left = "" if finding.tries_left is None else f", {finding.tries_left} left"
        return {
            "text": f"try spent{left}: {finding.detail}",
            "cause": CAUSE_WORDS[finding.cause],
            "remedy": finding.remedy,
        }

    def _trim(self) -> None:
        if len(self.trace.records) > MAX_RECORDS:
            self.trace.trim(MAX_RECORDS // 2)  # the meta record stays

    # --- the card (worker thread) ------------------------------------------------------------

    def read_status(self) -> Message:
        """The slot and its card as they are now (takes the card lock briefly)."""
        server = self.server
        status: Message = {
            "slot": self.index,
            "reader": self.reader,
            "port": server.port,
            "present": server.present,
            "inserted": server.connected.is_set(),
            "powered": server.powered,
        }
        with server.exclusive() as card:
            if not isinstance(card, Card):
                status["card"] = type(card).__name__
                return status
            pins = []
            for name in PIN_ORDER:
                if name not in card.state.pins:
                    continue
                rec = card.pin_record(name)
                pins.append(
                    {
                        "name": name,
                        "label": PIN_LABELS[name],
                        "tries": rec.tries_left,
                        "max": rec.max_tries,
                        "blocked": rec.tries_left == 0,
                        "spec": SPECS[name].label,
                    }
                )
            status.update(
                card="emulator",
                store=card.store.describe(),
                profile=str(card.state.profile),
                atr_form=card.state.atr_form,
                quirks=dict(vars(card.state.quirks)),
                pins=pins,
                tear_pending=card.faults.tear_after_decrement,
            )
        return status

    # --- merging (event-loop thread) ---------------------------------------------------------

    def merge(self, status: Message) -> Message:
        """*status* with each PIN's last change; a counter that moved with no exchange or
        control of ours behind it was changed by another process sharing the card file."""
        for pin in status.get("pins", []):
            name, tries = pin["name"], pin["tries"]
            before = self._tries.get(name)
            if before is not None and before != tries and name not in self._accounted:
                if name not in self._unexplained:
                    # The read may have overtaken the event of our own exchange behind the
                    # change (the slot thread hands events over after the card answered):
                    # blame another process only if the next read still finds it unexplained.
                    self._unexplained.add(name)
                    pin["last"] = self.last_change.get(name)
                    continue
                self.last_change[name] = {
                    "text": f"tries {before} -> {tries}",
                    "cause": "another process",
                    "time": _now(),
                }
            self._unexplained.discard(name)
            self._tries[name] = tries
            pin["last"] = self.last_change.get(name)
        self._accounted.clear()
        return status
