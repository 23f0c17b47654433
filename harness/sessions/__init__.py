"""Client sessions, one module per card application (yubikit style)."""

from __future__ import annotations

from harness.sessions.base import PinStatus, Session
from harness.sessions.jpki import JpkiSession
from harness.sessions.juki import JukiSession
from harness.sessions.surface import SurfaceSession
from harness.sessions.text import BasicFour, TextSession

__all__ = [
    "BasicFour",
    "JpkiSession",
    "JukiSession",
    "PinStatus",
    "Session",
    "SurfaceSession",
    "TextSession",
]
