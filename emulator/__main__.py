"""``python -m emulator``: the ``myna-emu`` command without its installed script."""

from __future__ import annotations

import sys

from emulator.cli import main

sys.exit(main())
