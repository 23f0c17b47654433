"""Client sessions, one module per card application (yubikit style)."""

from __future__ import annotations

from emulator.protocol import HOME, Application, Pin
from harness.sessions.base import PinStatus, Session
from harness.sessions.jpki import JpkiSession
from harness.sessions.juki import CommonSession, JukiSession
from harness.sessions.surface import SurfaceSession
from harness.sessions.text import BasicFour, TextSession
from harness.transport import Transport

#: The session class that speaks to each application.
SESSIONS: dict[Application, type[Session]] = {
    Application.JPKI: JpkiSession,
    Application.TEXT: TextSession,
    Application.SURFACE: SurfaceSession,
    Application.JUKI: JukiSession,
    Application.COMMON: CommonSession,
}


def session_for(pin: str, transport: Transport) -> Session:
    """A session on the application that holds *pin*'s home reference (selects it)."""
    return SESSIONS[HOME[Pin(pin)].app](transport)


__all__ = [
    "BasicFour",
    "CommonSession",
    "JpkiSession",
    "JukiSession",
    "PinStatus",
    "Session",
    "SurfaceSession",
    "TextSession",
    "session_for",
]
