"""myna-hil emulator: a virtual Japanese My Number Card (JPKI) that answers APDUs."""

from __future__ import annotations

import logging

#: The version of the distribution (myna-hil): pyproject.toml reads it, harness re-exports it.
__version__ = "0.2.0"

#: Log level for APDU hex dumps, below DEBUG. Secrets in command data are always redacted.
TRAFFIC = 5
logging.addLevelName(TRAFFIC, "TRAFFIC")
