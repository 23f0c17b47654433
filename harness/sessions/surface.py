"""Client session for the card-surface application (券面事項確認AP, "visual AP").

[model] The emulator models the application as selectable only; its data EFs need the My
Number or the check values, which are not modelled, so this session offers SELECT alone.
"""

from __future__ import annotations

import logging

from emulator.grammar.ids import SURFACE
from harness.sessions.base import Session

logger = logging.getLogger(__name__)



class SurfaceSession(Session):
    AID = SURFACE.AID
    NAME = "surface AP"
