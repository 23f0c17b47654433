"""Traces: recording, replay, golden files and phantom-lockout forensics."""

from __future__ import annotations

from harness.trace.explain import Cause, Explanation, Finding, explain, format_explanation
from harness.trace.recorder import (
    RecordingTransport,
    TraceFormatError,
    note,
    read_trace,
    write_trace,
)
from harness.trace.replay import ReplayDivergence, ReplayTransport

__all__ = [
    "Cause",
    "Explanation",
    "Finding",
    "RecordingTransport",
    "ReplayDivergence",
    "ReplayTransport",
    "TraceFormatError",
    "explain",
    "format_explanation",
    "note",
    "read_trace",
    "write_trace",
]
