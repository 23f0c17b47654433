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
from typing import Any

from emulator.protocol import PINS_OF, Profile
from harness.actors.issuer import reset_pin
from harness.cards import default_pins, pooled_card
from harness.clock import FakeClock
from harness.controls import CardControls, InProcessCard
from harness.hil.guard import Interlocks, authorise, guarded, refusal
from harness.scenarios import catalogue, phantom, service  # noqa: F401 - registers the scenarios
from harness.scenarios.base import (
    FACE_AUTH,
    REGISTRY,
    STANDARD,
    Ctx,
    Scenario,
    ScenarioResult,
    ScenarioSkipped,
)
from harness.sessions import JpkiSession
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
    return [
        Unit(s, p, u) for s in REGISTRY.values() for p, u in zip(s.profiles, s.units(), strict=True)
    ]


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


#: Opens a transport for a unit: returns the transport and its test controls (or None).
Opener = Callable[[Unit], tuple[Transport, "CardControls | None"]]


def inprocess_opener(unit: Unit) -> tuple[Transport, CardControls | None]:
    card = InProcessCard(pooled_card(unit.profile))
    return card.transport, card


def reader_opener(connect: Callable[[], Transport]) -> Opener:
    """Units on a reader: a fresh connection each, no test controls."""

    def opener(unit: Unit) -> tuple[Transport, CardControls | None]:
        return connect(), None

    return opener


def card_profile(transport: Transport) -> str:
    """``face-auth`` when the card carries no signing certificate, else ``standard``."""
    return STANDARD if JpkiSession(transport).cert_availability().sign else FACE_AUTH


def restore(transport: Transport, pins: dict[str, str], profile: str) -> None:
    """Re-set every PIN of *profile* to *pins* through the counter's issuer authentication.

    Runs after each unit on a reader, so the next unit finds the card as issued. Needs the
    TEST issuer key, i.e. the emulator (behind vpcd); a real card refuses it.
    """
    for name in PINS_OF[Profile(profile)]:
        reset_pin(transport, name, pins[name])


def run_unit(
    unit: Unit,
    opener: Opener | None = None,
    *,
    trace_dir: Path | None = None,
    redact: bool = True,
    meta: dict[str, object] | None = None,
    interlocks: Interlocks | None = None,
    pins: dict[str, str] | None = None,
) -> tuple[ScenarioResult, RecordingTransport | None]:
    """Run one unit and return its result and its recording (``None`` if it never started).

    On a physical transport the card is identified first and everything goes through the
    guard (:mod:`harness.hil.guard`) under *interlocks*; an
    :class:`~harness.hil.guard.InterlockError` (wrong card) or a card that is not a My Number
    card propagates: the run must stop.
    """
    start = time.perf_counter()
    transport, controls = (opener or inprocess_opener)(unit)
    try:
        permit = authorise(transport, interlocks or Interlocks())
    except BaseException:
        transport.close()
        raise
    transport = guarded(transport, permit)
    why = refusal(unit.scenario, transport, permit, controls)
    if why is None and controls is None:
        found = card_profile(transport)
        if found != unit.profile:
            why = f"the card in the reader is a {found} card"
    if why:
        transport.close()
        return ScenarioResult(unit.name, unit.profile, (), 0.0, skipped=why), None
    clock = FakeClock()
    rec = RecordingTransport(
        transport,
        redact=redact,
        clock=clock,
        meta={"scenario": unit.name, "profile": unit.profile, **(meta or {})},
    )
    # The check numbers are known for a card the harness issued (it has test controls), not
    # for a card in a reader: there they come with *pins* or the scenarios that need them skip.
    start_pins = dict(pins or default_pins(unit.profile, check_numbers=controls is not None))
    ctx = Ctx(
        rec,
        unit.profile,
        dict(start_pins),
        controls,
        clock,
        random.Random(zlib.crc32(unit.name.encode())),
    )
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
    if controls is None and unit.scenario.destructive and error is None:
        try:
            restore(transport, start_pins, unit.profile)
        except Exception as exc:
            error = f"could not restore the card's PINs after the scenario: {exc}"
    rec.close()
    if trace_dir is not None:
        rec.save(trace_dir / f"{unit.name}.jsonl")
        if ctx.service_log is not None:
            ctx.service_log.save(trace_dir / f"{unit.name}.service.jsonl")
    result = ScenarioResult(
        unit.name,
        unit.profile,
        tuple(ctx.steps),
        time.perf_counter() - start,
        error,
        skipped,
        rec.apdus,
    )
    return result, rec


def run_units(
    units: Sequence[Unit],
    opener: Opener | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    **kwargs: Any,
) -> list[ScenarioResult]:
    """Run *units* in order (the benchmark and the plugin use this; the CLI prints as it goes)."""
    results = []
    for n, unit in enumerate(units):
        if progress:
            progress(n, len(units), unit.name)
        results.append(run_unit(unit, opener, **kwargs)[0])
    if progress:
        progress(len(units), len(units), "")
    return results
