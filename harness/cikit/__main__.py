"""``python3 -m harness.cikit start|stop|status``: ``myna-hil ci pcscd`` with the standard
library only (what ``ci/pcscd-start.sh`` runs before any virtualenv exists)."""

from __future__ import annotations

import sys

from harness.cikit.cli import main

sys.exit(main())
