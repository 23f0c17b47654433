"""``myna-hil ci pcscd start | stop | status``: pcscd with vpcd readers for a CI job
(:mod:`harness.cikit`)."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cikit import cli as cikit_cli
from harness.cli.errors import UsageError

__all__ = ["add_parser", "cmd_ci"]


def add_parser(sub: Any) -> None:
    """Register ``ci`` on the ``myna-hil`` sub-parsers."""
    ci = sub.add_parser("ci", help="set up what a CI job needs (pcscd with vpcd readers)")
    tools = ci.add_subparsers(dest="ci_tool", metavar="TOOL")
    pcscd = tools.add_parser("pcscd", help="start, stop or report pcscd with N vpcd readers")
    cikit_cli.add_arguments(pcscd)


def cmd_ci(args: argparse.Namespace) -> int:
    if args.ci_tool != "pcscd":
        raise UsageError("ci needs a tool: pcscd (start, stop or status)")
    if args.pcscd_action is None:
        raise UsageError("ci pcscd needs an action: start, stop or status")
    return cikit_cli.run(args, getattr(args, "stdout", None))
