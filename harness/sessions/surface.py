"""Client session for the card-surface application (券面事項確認AP, "visual AP").

[model] The emulator models the application as selectable only; its data EFs need the My
Number or the check values, which are not modelled, so this session offers SELECT alone.
"""

from __future__ import annotations

import logging

from harness.sessions.base import Session

logger = logging.getLogger(__name__)

AID = bytes.fromhex("D3921000310001010402")


class SurfaceSession(Session):
    AID = AID
    NAME = "surface AP"
