"""Helpers for the harness tests."""

from __future__ import annotations

from pathlib import Path

from emulator.card import Card
from harness.controls import InProcessCard
from harness.inprocess import InProcessTransport
from harness.scenarios.runner import Unit, run_unit, select_units
from harness.trace.records import TraceRecord


class PhysicalLike(InProcessTransport):
    """An in-process card that the harness must treat as physical (like a card behind vpcd)."""

    name = "pcsc:test"
    physical = True


def unit(name: str) -> Unit:
    return next(u for u in select_units([name]) if u.name == name)


def record(name: str, *, redact: bool = True, trace_dir: Path | None = None) -> list[TraceRecord]:
    """Run one unit in-process and return its trace records."""
    result, rec = run_unit(unit(name), redact=redact, trace_dir=trace_dir)
    assert result.ok, [s for s in result.steps if not s.ok] or result.error
    assert rec is not None
    return rec.records


def opener_for(card: Card):  # type: ignore[no-untyped-def]
    """An opener that runs a unit on *card* (e.g. one put in a bad state on purpose)."""

    def opener(_: Unit):  # type: ignore[no-untyped-def]
        c = InProcessCard(card)
        return c.transport, c

    return opener
