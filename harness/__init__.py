"""myna-hil harness: client sessions, actors and scenarios over any transport."""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
