"""``myna-hil list``: the scenario catalogue, one line per unit (``--json``: a document)."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import check_target, emit, json_text
from harness.scenarios import catalogue, phantom  # noqa: F401 - registers the scenarios
from harness.scenarios.base import REGISTRY

__all__ = ["add_parser", "cmd_list", "to_json"]


def add_parser(sub: Any) -> None:
    """Register ``list`` on the ``myna-hil`` sub-parsers."""
    ls = sub.add_parser("list", help="list the scenarios")
    ls.add_argument("--json", metavar="FILE", help="write the catalogue as JSON ('-': stdout)")


def _kind(needs_admin: bool, destructive: bool) -> str:
    return "in-process" if needs_admin else "destructive" if destructive else "read-only"


def to_json() -> dict[str, Any]:
    """The catalogue: every unit with its scenario, profile, kind and summary."""
    units = []
    for name, s in REGISTRY.items():
        for unit, profile in zip(s.units(), s.profiles, strict=True):
            units.append(
                {
                    "unit": unit,
                    "scenario": name,
                    "profile": profile,
                    "kind": _kind(s.needs_admin, s.destructive),
                    "summary": s.summary,
                }
            )
    return {"format": "myna-hil-scenarios", "version": 1, "units": units}


def cmd_list(args: argparse.Namespace | None = None) -> int:
    target = getattr(args, "json", None)
    check_target(target)
    width = max(len(u) for s in REGISTRY.values() for u in s.units())
    print(f"{'scenario':<{width}}  {'kind':<16} summary")
    for s in REGISTRY.values():
        kind = _kind(s.needs_admin, s.destructive)
        for unit in s.units():
            print(f"{unit:<{width}}  {kind:<16} {s.summary}")
    if target is not None:
        emit(target, json_text(to_json()), getattr(args, "stdout", None))
    return 0
