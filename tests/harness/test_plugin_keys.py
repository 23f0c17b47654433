"""Key generation happens at most once per process under the plugin, xdist workers included:
every test's fresh card (any profile, ATR or check-number setting) reuses the process's TEST
PKI. Counted in new pytest processes, where nothing has made keys yet."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

COUNTING_CONFTEST = """
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


RAN = []


def pytest_runtest_setup(item):
    RAN.append(item.nodeid)


def pytest_sessionfinish(session):
    # not PYTEST_XDIST_WORKER: the controller inherits it when this suite runs under xdist
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(f"keygen-{worker}.txt", "w") as f:
        f.write(f"{len(CALLS)} {len(RAN)}")
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
    counts = {  # process -> (key generations, tests run)
        f.stem.removeprefix("keygen-"): tuple(map(int, f.read_text().split()))
        for f in pytester.path.glob("keygen-*.txt")
    }
    ran = {k: keys for k, (keys, tests) in counts.items() if tests}
    assert sum(tests for _, tests in counts.values()) == 26, counts
    assert ran and all(keys == 1 for keys in ran.values()), counts
    assert all(keys == 0 for k, (keys, tests) in counts.items() if not tests), counts
