"""``myna-hil ci pcscd start | stop | status`` (also ``python3 -m harness.cikit``, which the
shell wrappers ``ci/pcscd-start.sh`` / ``ci/pcscd-stop.sh`` run before any virtualenv exists).

Exit status: 0 done (also: nothing to do); 1 pcscd could not be set up, started or stopped,
with one line on stderr that says why and what to install or run; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from harness.cikit.pcscd import CiError, PcscdConfig, start, status, stop

__all__ = ["add_arguments", "main", "run"]

_DESCRIPTION = """\
Set up pcscd with vsmartcard's vpcd readers for a CI job, and start it. Installs nothing:
pcscd and the vpcd driver must be there (Debian/Ubuntu: apt-get install pcscd
vsmartcard-vpcd libpcsclite1). Needs root (writes /etc/reader.conf.d, starts pcscd).

  start   write the reader entries for --readers N slots (vpcd slots come in pairs), start
          pcscd unless one runs (a running one is reused and left alone), wait until the
          readers are listed
  stop    stop the pcscd that 'start' started, and nothing else
  status  what runs and what is set up (changes nothing)

Environment (as ci/pcscd-start.sh always took it): MYNA_VPCD_EXTRA (extra entries),
MYNA_PCSCD_TIMEOUT, MYNA_PCSCD_DEBUG=1, MYNA_PCSCD_LOG, MYNA_PCSCD_MARKER (the pid marker,
default /run/myna-hil/pcscd.pid), MYNA_VPCD_DRIVER (the driver, default
/usr/lib/pcsc/drivers/serial/libifdvpcd.so).
"""


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``pcscd`` actions and their options, on *parser*."""
    parser.description = _DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="pcscd_action", metavar="ACTION")
    st = actions.add_parser("start", help="set up the vpcd readers and start pcscd")
    st.add_argument(
        "--readers",
        type=_positive_int,
        metavar="N",
        help="vpcd reader slots wanted, rounded up to an even number "
        "(default 2, or 2 * (1 + MYNA_VPCD_EXTRA))",
    )
    st.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="wait for the readers (default 20)"
    )
    st.add_argument("--debug", action="store_true", default=None, help="pcscd -d -a (APDU log)")
    actions.add_parser("stop", help="stop the pcscd 'start' started, nothing else")
    ss = actions.add_parser("status", help="what runs and what is set up")
    ss.add_argument("--json", metavar="FILE", help="write the status as JSON ('-': stdout)")


def _say(text: str) -> None:
    print(f"myna-hil ci: {text}", flush=True)


def run(args: argparse.Namespace, stdout: Any = None) -> int:
    """Run the parsed action; the exit status."""
    stdout = stdout or sys.stdout
    try:
        overrides = {
            "readers": getattr(args, "readers", None),
            "timeout": getattr(args, "timeout", None),
            "debug": getattr(args, "debug", None),
        }
        cfg = PcscdConfig.from_env(os.environ, **overrides)
        if args.pcscd_action == "start":
            start(cfg, _say)
        elif args.pcscd_action == "stop":
            stop(cfg, _say)
        elif args.pcscd_action == "status":
            return _status(cfg, args.json, stdout)
        else:
            print(
                "myna-hil: error: ci pcscd needs an action: start, stop or status", file=sys.stderr
            )
            return 2
    except CiError as exc:
        print(f"myna-hil: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _status(cfg: PcscdConfig, target: str | None, stdout: Any) -> int:
    doc = status(cfg)
    if target is not None:
        text = json.dumps(doc, indent=1) + "\n"
        if target == "-":
            stdout.write(text)
        else:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
        if target == "-":
            return 0
    running = doc["running"]
    started = doc["started_here"]
    print(
        f"pcscd: {'running, pid ' + ' '.join(map(str, running)) if running else 'not running'}"  # type: ignore[call-overload]
        + (f" (started by 'myna-hil ci pcscd start': {started})" if started else "")
    )
    print(f"vpcd driver: {doc['vpcd_driver'] or 'missing (apt-get install vsmartcard-vpcd)'}")
    readers = doc["vpcd_readers"]
    if not doc["reachable"]:
        print("readers: pcscd does not answer")
    else:
        print(f"vpcd readers: {len(readers)}")  # type: ignore[arg-type]
        for r in readers:  # type: ignore[attr-defined]
            print(f"  {r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python3 -m harness.cikit ACTION``: the same as ``myna-hil ci pcscd ACTION``."""
    parser = argparse.ArgumentParser(prog="myna-hil ci pcscd")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    return run(args)
