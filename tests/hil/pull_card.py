"""Test-only plugin: pull the card (stop its ``myna-emu serve``) before a named test.

Used by tests/harness/test_hil_interlocks.py to prove a mid-run removal stops the HIL run
cleanly: ``-p tests.hil.pull_card`` with ``MYNA_TEST_PULL_PID`` (the serve process) and
``MYNA_TEST_PULL_BEFORE`` (a test name).
"""

from __future__ import annotations

import os
import signal

import pytest

from harness.pytest_plugin import wait_for_card


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    if item.name != os.environ.get("MYNA_TEST_PULL_BEFORE"):
        return
    os.kill(int(os.environ["MYNA_TEST_PULL_PID"]), signal.SIGTERM)
    reader = os.environ["MYNA_READER"]
    assert wait_for_card(reader, 15.0, present=False), f"{reader} still holds a card"
