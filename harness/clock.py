"""Injectable clocks: scenarios move time (the kiosk's 24-hour window) without sleeping."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

#: Where scenario time starts: fixed, so traces and golden files are reproducible.
EPOCH = dt.datetime(2026, 4, 1, 9, 0, 0, tzinfo=dt.UTC)


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """Wall-clock time (UTC)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: dt.datetime = EPOCH) -> None:
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        """Move forward by *delta* (or ``timedelta(**kwargs)``); returns the new time."""
        step = delta if delta is not None else dt.timedelta(**kwargs)
        if step < dt.timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += step
        return self._now
