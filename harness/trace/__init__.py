"""Traces: recording, replay, golden files and phantom-lockout forensics."""

from __future__ import annotations

from harness.trace.decode import CommandKind
from harness.trace.explain import Cause, Explanation, Finding, explain, format_explanation
from harness.trace.recorder import (
    RecordingTransport,
    TraceFormatError,
    TraceLog,
    note,
    read_trace,
    write_trace,
)
from harness.trace.records import Cmd, Control, Lost, Meta, Note, Reset, Rsp, TraceRecord
from harness.trace.replay import ReplayDivergence, ReplayTransport

__all__ = [
    "Cause",
    "Cmd",
    "CommandKind",
    "Control",
    "Explanation",
    "Finding",
    "Lost",
    "Meta",
    "Note",
    "RecordingTransport",
    "ReplayDivergence",
    "ReplayTransport",
    "Reset",
    "Rsp",
    "TraceFormatError",
    "TraceLog",
    "TraceRecord",
    "explain",
    "format_explanation",
    "note",
    "read_trace",
    "write_trace",
]
