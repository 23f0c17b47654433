"""Running scenario units: pick them by name, build the card or reader, record, collect.

A *unit* is a scenario on one profile: ``lockout-text`` (its first profile) or
``lockout-text@face-auth``. Names may be given as the scenario (every profile) or the unit.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.clock import FakeClock
from harness.guard import refusal
from harness.scenarios import catalogue, phantom  # noqa: F401 - registers the scenarios
from harness.scenarios.base import REGISTRY, Ctx, Scenario, ScenarioResult, ScenarioSkipped
from harness.scenarios.cards import default_pins, pooled_card
from harness.trace.recorder import RecordingTransport
from harness.transport import CardRemovedError, Transport, TransportError

logger = logging.getLogger(__name__)


class UnknownScenarioError(ValueError):
    """A name that is neither a scenario nor a unit; the message lists the known ones."""


@dataclass(frozen=True)
class Unit:
    scenario: Scenario
    profile: str
    name: str


def all_units() -> list[Unit]:
    return [Unit(s, p, u) for s in REGISTRY.values() for p, u in zip(s.profiles, s.units(),
                                                                    strict=True)]


def select_units(names: Iterable[str]) -> list[Unit]:
    """Units for *names* in catalogue order; unknown names raise :class:`UnknownScenarioError`."""
    units = all_units()
    wanted: set[str] = set()
    for name in names:
        hits = {u.name for u in units if name in (u.name, u.scenario.name)}
        if not hits:
            known = ", ".join(REGISTRY)
            raise UnknownScenarioError(f"unknown scenario {name!r}; known: {known}")
        wanted |= hits
    return [u for u in units if u.name in wanted]


#: Opens a transport for a unit: returns (transport, in-process card or None).
Opener = Callable[[Unit], tuple[Transport, object | None]]


def inprocess_opener(unit: Unit) -> tuple[Transport, object | None]:
    from harness.inprocess import InProcessTransport

    card = pooled_card(unit.profile)
    return InProcessTransport(card), card


def run_unit(
    unit: Unit,
    opener: Opener = inprocess_opener,
    *,
    trace_dir: Path | None = None,
    redact: bool = True,
    allow_destructive: bool = False,
    pins: dict[str, str] | None = None,
) -> tuple[ScenarioResult, RecordingTransport | None]:
    """Run one unit and return its result and its recording (``None`` if it never started)."""
    start = time.perf_counter()
    transport, card = opener(unit)
    why = refusal(unit.scenario, transport, allow_destructive=allow_destructive)
    if why:
        transport.close()
        return ScenarioResult(unit.name, unit.profile, (), 0.0, skipped=why), None
    clock = FakeClock()
    rec = RecordingTransport(transport, redact=redact, clock=clock,
                             meta={"scenario": unit.name, "profile": unit.profile})
    ctx = Ctx(rec, unit.profile, dict(pins or default_pins(unit.profile)), card,  # type: ignore[arg-type]
              clock, random.Random(zlib.crc32(unit.name.encode())))
    error = skipped = None
    try:
        unit.scenario.func(ctx)
    except ScenarioSkipped as exc:
        skipped = str(exc)
    except (CardRemovedError, TransportError) as exc:
        error = f"transport: {exc}"
    except Exception as exc:  # a scenario bug must not end the whole run
        logger.exception("scenario %s crashed", unit.name)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        rec.close()
    if trace_dir is not None:
        rec.save(trace_dir / f"{unit.name}.jsonl")
    result = ScenarioResult(unit.name, unit.profile, tuple(ctx.steps),
                            time.perf_counter() - start, error, skipped, rec.apdus)
    return result, rec


def run_units(units: Sequence[Unit], opener: Opener = inprocess_opener,
              progress: Callable[[int, int, str], None] | None = None,
              **kwargs: object) -> list[ScenarioResult]:
    results = []
    for n, unit in enumerate(units):
        if progress:
            progress(n, len(units), unit.name)
        results.append(run_unit(unit, opener, **kwargs)[0])  # type: ignore[arg-type]
    if progress:
        progress(len(units), len(units), "")
    return results
