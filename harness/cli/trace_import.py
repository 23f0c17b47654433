"""``myna-hil trace import``: a pcsc-spy, OpenSC or plain APDU log as a redacted trace."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.cli.errors import UsageError
from harness.trace.explain import explain, format_explanation
from harness.trace.logs import (
    FORMATS,
    MAX_LOG_BYTES,
    LogImportError,
    decode_log,
    import_log,
    parse,
    to_records,
)
from harness.trace.recorder import dumps
from harness.trace.records import Cmd, Lost, TraceRecord

__all__ = ["add_parser", "cmd_import", "default_output"]

_DESCRIPTION = """\
Read an APDU log made by another tool and write it as a myna-hil trace, so that
`myna-hil trace explain` and `trace show` work on it. Formats (detected; --format overrides):

  pcsc-spy      what the pcsc-spy program prints (colours, -d and -t are all fine)
  pcsc-spy-raw  libpcscspy's own lines (cat ~/pcsc-spy > app.spy): with wall-clock times
  opensc        an OpenSC debug log (OPENSC_DEBUG=9, or debug = 9 in opensc.conf)
  plain         one APDU a line: '> 00A4...' for a command, '< 9000' for the answer

PINs and passwords in the log (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, CHANGE
KEY data) are redacted and fingerprinted as in a recorded trace; nothing else of the log is
copied. The log itself still holds them in clear: keep it private, or delete it.
"""


def add_parser(tsub: Any) -> None:
    """Register ``import`` on the ``trace`` sub-parsers."""
    im = tsub.add_parser(
        "import",
        help="turn a pcsc-spy, OpenSC debug or plain APDU log into a redacted trace",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    im.add_argument("log", type=Path, help="the log file ('-': standard input, with -o)")
    im.add_argument(
        "--format",
        choices=sorted(FORMATS),
        help="the log's format (default: detected from its first lines)",
    )
    im.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the trace ('-': standard output; default: LOG's name with "
        ".trace.jsonl, next to it)",
    )
    im.add_argument("--force", action="store_true", help="overwrite an existing output file")
    im.add_argument("--explain", action="store_true", help="also print `trace explain`'s findings")


def default_output(log: Path) -> Path:
    """``app.log`` -> ``app.trace.jsonl`` in the same directory."""
    return log.with_name(f"{log.stem or log.name}.trace.jsonl")


def cmd_import(args: argparse.Namespace) -> int:
    log: Path = args.log
    from_stdin = str(log) == "-"
    if from_stdin and not args.output:
        raise UsageError("reading the log from standard input: say where the trace goes (-o)")
    to_stdout = args.output == "-"
    out = None if to_stdout else Path(args.output) if args.output else default_output(log)
    if out is not None:
        if out.exists() and log.exists() and os.path.samefile(out, log):
            raise UsageError(f"{out}: the output would overwrite the log itself")
        if out.exists() and not args.force:
            raise UsageError(f"{out} exists; pass --force to overwrite it, or -o another file")
    try:
        if from_stdin:
            text = decode_log(sys.stdin.buffer.read(MAX_LOG_BYTES + 1), "standard input")
            records = to_records(parse(text, args.format, name="standard input"), "stdin")
        else:
            records = import_log(log, args.format)
    except LogImportError as exc:
        raise UsageError(str(exc)) from None
    text = dumps(records)
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or type(exc).__name__}") from None
    source = "standard input" if from_stdin else str(log)
    print(_summary(source, records, out), file=sys.stderr if to_stdout else sys.stdout)
    if args.explain:
        print(format_explanation(explain(records)), file=sys.stderr if to_stdout else sys.stdout)
    return 0


def _summary(log: str, records: list[TraceRecord], out: Path | None) -> str:
    meta = records[0].to_json()
    apdus = sum(1 for r in records if isinstance(r, Cmd))
    lost = sum(1 for r in records if isinstance(r, Lost))
    secret = sum(1 for r in records if isinstance(r, Cmd) and r.fp is not None)
    parts = [f"{apdus} APDUs"]
    if secret:
        parts.append(f"{secret} with a PIN or password, redacted")
    if lost:
        parts.append(f"{lost} without an answer")
    where = "standard output" if out is None else str(out)
    line = f"{log} ({meta.get('source_format')}): {', '.join(parts)} -> {where}"
    return line if out is None else f"{line}\nnext: myna-hil trace explain {out}"
