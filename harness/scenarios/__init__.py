"""The scenario catalogue of docs/scenarios.md, runnable on any transport."""

from __future__ import annotations
