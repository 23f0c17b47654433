"""A running pcscd with the vpcd readers, for end-to-end tests.

Starts pcscd through ``ci/pcscd-start.sh`` (which reuses one already running). When pcscd or
the vpcd driver is not installed the tests are skipped -- except under ``CI`` (any non-empty
value but ``false``/``0``), where a missing PC/SC stack is a failure: CI exists to run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_SCRIPT = REPO / "ci" / "pcscd-start.sh"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
#: The two readers of Debian's vpcd reader.conf entry (slots 0 and 1).
READER_SLOT0 = "Virtual PCD 00 00"
READER_SLOT1 = "Virtual PCD 00 01"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_stack() -> str | None:
    """Why the PC/SC stack cannot run here, or None when it can."""
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (ci/install-system.sh installs it)"
    if not VPCD_DRIVER.exists():
        return f"vpcd driver {VPCD_DRIVER} missing (package vsmartcard-vpcd)"
    return None


def ensure_pcscd() -> None:
    """Make sure pcscd runs with the vpcd readers listed; skip or fail when impossible."""
    reason = missing_stack()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI is set but the PC/SC stack is missing: {reason}", pytrace=False)
        pytest.skip(reason)
    result = subprocess.run(
        ["bash", str(START_SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"ci/pcscd-start.sh failed ({result.returncode}):\n{result.stdout}{result.stderr}",
            pytrace=False,
        )
