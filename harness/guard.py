"""The one place that decides whether a scenario may run on a transport.

Issue 5 (HIL safety interlocks) will refine this: card identity, try floors, a second flag
for blocking steps. Everything that runs scenarios asks :func:`refusal` first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from harness.transport import Transport

if TYPE_CHECKING:
    from harness.scenarios.base import Scenario

logger = logging.getLogger(__name__)


def refusal(scenario: Scenario, transport: Transport, *, allow_destructive: bool) -> str | None:
    """Why *scenario* must not run on *transport*, or ``None`` when it may."""
    if not transport.physical:
        return None
    if scenario.needs_admin:
        return "needs the in-process card's test controls (fault injection, quirks, profile)"
    if scenario.destructive and not allow_destructive:
        return ("destructive: spends tries or changes PINs; refused on a reader without "
                "--destructive (only for a test card you may lock)")
    return None
