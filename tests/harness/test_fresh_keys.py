"""``myna-hil run --fresh-keys`` and the plugin's ``--myna-fresh-keys`` (docs/card.md#test-keys)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.identity import FRESH_KEYS_ENV
from emulator.published_keys import AUTH, published_key
from harness import cards
from harness.cli import main

pytest_plugins = ["pytester"]


def _is_published(der: bytes) -> bool:
    key = serialization.load_der_private_key(der, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key().public_numbers() == published_key(AUTH).public_key().public_numbers()


@pytest.fixture
def clean_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The run's keys and card pool as a fresh process has them, before and after."""
    monkeypatch.delenv(FRESH_KEYS_ENV, raising=False)
    cards.shared_pki.cache_clear()
    cards._POOL.clear()
    yield
    cards.shared_pki.cache_clear()
    cards._POOL.clear()


def test_run_uses_the_published_keys_by_default(
    clean_keys: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "lockout-auth", "-q"]) == 0
    assert _is_published(cards.shared_pki().auth_key)


def test_run_fresh_keys(
    clean_keys: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cards.shared_pki()  # keys made before the option must not be kept
    monkeypatch.setenv(FRESH_KEYS_ENV, "")  # restored after the test: the option sets it
    assert main(["run", "lockout-auth", "-q", "--fresh-keys"]) == 0
    assert not _is_published(cards.shared_pki().auth_key)
    # Generated once for the process: every later card of the run has the same fresh keys.
    assert cards.new_card().state.pki.auth_key == cards.new_card().state.pki.auth_key
    assert cards.new_card().state.pki.auth_key == cards.shared_pki().auth_key
    assert "1 passed" in capsys.readouterr().out


def test_fresh_keys_are_refused_for_a_reader(
    clean_keys: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "lockout-auth", "--reader", "Some Reader", "--fresh-keys"]) == 2
    err = capsys.readouterr().err
    assert "--fresh-keys applies to the emulator" in err
    assert "Traceback" not in err


FRESH_KEYS_TEST = """
from cryptography.hazmat.primitives import serialization
from emulator.published_keys import AUTH, published_key


def test_card_keys(myna_card, request):
    der = myna_card.card.state.pki.auth_key
    key = serialization.load_der_private_key(der, None)
    published = published_key(AUTH).public_key().public_numbers()
    fresh = request.config.getoption("myna_fresh_keys")
    assert (key.public_key().public_numbers() != published) == fresh
"""


@pytest.mark.parametrize("fresh", [False, True], ids=["published", "fresh"])
def test_plugin_option(pytester: pytest.Pytester, fresh: bool) -> None:
    pytester.makepyfile(FRESH_KEYS_TEST)
    args = ["-p", "no:cacheprovider", *(["--myna-fresh-keys"] if fresh else [])]
    env_free = pytester.runpytest_subprocess(*args)
    env_free.assert_outcomes(passed=1)
