"""The scenario model: named units of steps, each step an expected and an observed outcome.

A scenario is a function of a :class:`Ctx`. It drives actors over ``ctx.transport`` and
records every outcome with :meth:`Ctx.check`. Whatever needs more than APDUs (fault
injection, a status-word quirk, a profile change) goes through ``ctx.admin``, which exists
only for the in-process card; scenarios that need it declare ``needs_admin``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.pins import SPECS
from emulator.protocol import CHECK_NUMBERS, PIN_ORDER
from harness.clock import FakeClock
from harness.errors import NoSuchFileError
from harness.revocation.log import ServiceLog
from harness.sessions import session_for
from harness.sessions.base import PinStatus
from harness.trace.recorder import RecordingTransport

if TYPE_CHECKING:
    from harness.controls import CardControls


STANDARD = "standard"
FACE_AUTH = "face-auth"


class ScenarioSkipped(Exception):
    """The scenario cannot run on this transport (the message says why)."""


@dataclass(frozen=True, slots=True)
class StepResult:
    step: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    func: Callable[[Ctx], None]
    profiles: tuple[str, ...] = (STANDARD,)
    destructive: bool = True  # can spend tries or change PINs
    needs_admin: bool = False  # fault injection / quirks / profile change: in-process only
    tears: bool = False  # simulates power loss inside the card: needs the in-process transport

    def units(self) -> list[str]:
        """``name`` for the first profile, ``name@profile`` for the others."""
        return [self.name if i == 0 else f"{self.name}@{p}" for i, p in enumerate(self.profiles)]


REGISTRY: dict[str, Scenario] = {}


def scenario(
    name: str,
    summary: str,
    *,
    profiles: tuple[str, ...] = (STANDARD,),
    destructive: bool = True,
    needs_admin: bool = False,
    tears: bool = False,
) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    """Register a scenario function under *name*."""

    def register(func: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        if name in REGISTRY:
            raise ValueError(f"scenario {name!r} registered twice")
        REGISTRY[name] = Scenario(name, summary, func, profiles, destructive, needs_admin, tears)
        return func

    return register


@dataclass
class Ctx:
    """Everything a scenario touches."""

    transport: RecordingTransport
    profile: str
    pins: dict[str, str] = field(repr=False)  # the values the holder knows; never printed
    controls: CardControls | None = None  # test controls (in-process or replay), else None
    clock: FakeClock = field(default_factory=FakeClock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    steps: list[StepResult] = field(default_factory=list)
    service_log: ServiceLog | None = None  # the TEST revocation service's, if one ran

    @property
    def admin(self) -> CardControls:
        if self.controls is None:
            raise ScenarioSkipped("needs the in-process card's test controls")
        return self.controls

    def check(self, step: str, expected: object, got: object) -> bool:
        result = StepResult(step, str(expected), str(got))
        self.steps.append(result)
        return result.ok

    # --- counters ----------------------------------------------------------------------

    def status(self, pin: str) -> PinStatus | None:
        """A PIN's counter by empty VERIFY (no try spent); ``None`` if the card has no such PIN."""
        t = self.transport
        try:
            session: Any = session_for(pin, t)
            status: PinStatus = session.pin_status(pin)
            return status
        except NoSuchFileError:
            return None

    def counters(self, *names: str) -> str:
        """``"auth 3/3, sign 5/5, ..."``, blocked as ``0/3 blocked``, absent as ``absent``."""
        out = []
        for n in names or PIN_ORDER:
            st = self.status(n)
            if st is None:
                out.append(f"{n} absent")
            elif not st.usable:
                out.append(f"{n} unusable")
            else:
                tries = "?" if st.tries_left is None else st.tries_left
                out.append(f"{n} {tries}/{st.max_tries}{' blocked' if st.blocked else ''}")
        return ", ".join(out)

    def expect_counters(self, step: str, **expected: str | int) -> bool:
        """Check counters; *expected* maps PIN -> tries (int), ``"blocked"`` or ``"absent"``."""
        want = []
        for n in (*PIN_ORDER, *CHECK_NUMBERS):
            if n not in expected:
                continue
            v = expected[n]
            full = SPECS[n].max_tries
            want.append(
                f"{n} 0/{full} blocked"
                if v == "blocked"
                else f"{n} {v}"
                if isinstance(v, str)
                else f"{n} {v}/{full}"
            )
        return self.check(step, ", ".join(want), self.counters(*expected))

    def full_counters(self) -> dict[str, str | int]:
        """Every PIN of this profile at its maximum."""
        if self.profile == FACE_AUTH:
            return {"auth": "unusable", "sign": "absent", "juki": 3, "helper": 3}
        return {pin: SPECS[pin].max_tries for pin in PIN_ORDER}


@dataclass(frozen=True)
class ScenarioResult:
    unit: str
    profile: str
    steps: tuple[StepResult, ...]
    seconds: float
    error: str | None = None
    skipped: str | None = None
    apdus: int = 0

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None and all(s.ok for s in self.steps)
