"""``python -m harness``: the ``myna-hil`` command without its installed script."""

from __future__ import annotations

import sys

from harness.cli import main

sys.exit(main())
