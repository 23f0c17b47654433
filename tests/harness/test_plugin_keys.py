"""Key generation happens at most once per process under the plugin, xdist workers included:
every test's fresh card (any profile, ATR or check-number setting) reuses the process's TEST
PKI. Counted in new pytest processes, where nothing has made keys yet."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

COUNTING_CONFTEST = """
import os

import emulator.identity
import harness.cards

CALLS = []
_generate = emulator.identity.generate_pki


def counting(*args, **kwargs):
    CALLS.append(1)
    return _generate(*args, **kwargs)


# harness.cards holds its own reference (from emulator.identity import generate_pki)
harness.cards.generate_pki = counting
emulator.identity.generate_pki = counting


def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"keygen-{worker}.txt", "w") as f:
        f.write(str(len(CALLS)))
"""

TESTS = """
import pytest


@pytest.mark.parametrize("n", range(20))
def test_default(myna_card, n):
    assert myna_card.tries_left("auth") == 3


@pytest.mark.parametrize("n", range(5))
@pytest.mark.myna_card("face-auth", atr="contactless")
def test_face_auth(myna_card, n):
    assert myna_card.profile == "face-auth"


@pytest.mark.myna_card(check_numbers=False)
def test_without_check_numbers(myna_card):
    myna_card.change_profile("face-auth")
    myna_card.change_profile("standard")
"""


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "xdist-2"])
def test_keys_are_made_once_per_process(pytester: pytest.Pytester, workers: int) -> None:
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(TESTS)
    args = ["-p", "no:cacheprovider"] + (["-n", str(workers)] if workers else [])
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=26)
    counts = {
        f.stem.removeprefix("keygen-"): int(f.read_text())
        for f in pytester.path.glob("keygen-*.txt")
    }
    runners = {k: v for k, v in counts.items() if k.startswith("gw")} if workers else counts
    assert len(runners) == (workers or 1), counts
    assert all(n == 1 for n in runners.values()), counts
