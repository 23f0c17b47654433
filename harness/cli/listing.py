"""``myna-hil list``: the scenario catalogue, one line per unit."""

from __future__ import annotations

from typing import Any

from harness.scenarios import catalogue, phantom  # noqa: F401 - registers the scenarios
from harness.scenarios.base import REGISTRY

__all__ = ["add_parser", "cmd_list"]


def add_parser(sub: Any) -> None:
    """Register ``list`` on the ``myna-hil`` sub-parsers."""
    sub.add_parser("list", help="list the scenarios")


def cmd_list() -> int:
    width = max(len(u) for s in REGISTRY.values() for u in s.units())
    print(f"{'scenario':<{width}}  {'kind':<16} summary")
    for s in REGISTRY.values():
        kind = "in-process" if s.needs_admin else "destructive" if s.destructive else "read-only"
        for unit in s.units():
            print(f"{unit:<{width}}  {kind:<16} {s.summary}")
    return 0
