"""myna-hil harness: client sessions, actors and scenarios over any transport."""

from __future__ import annotations

# One version for the whole distribution: emulator/__init__.py (pyproject reads it too).
from emulator import __version__

__all__ = ["__version__"]
