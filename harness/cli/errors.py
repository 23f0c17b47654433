"""How ``myna-hil`` fails: :class:`UsageError` for bad input, printed as one line by
:func:`error` (exit status 2, no traceback)."""

from __future__ import annotations

import sys


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def error(message: str) -> None:
    """The one line on stderr of a failed command (``myna-hil: error: ...``, like argparse)."""
    first = message.splitlines()[0] if message.strip() else "failed"
    print(f"myna-hil: error: {first}", file=sys.stderr)
