"""The scenario catalogue of scenarios.md, runnable on any transport."""

from __future__ import annotations
