"""The pytest plugin, tested with pytest's own pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

VENDOR_TEST = """
import pytest
from harness.actors.apps import MynaportalLogin, SHOWN_LOCKED


def test_locked_message(myna_card):
    myna_card.block("auth")
    shown = MynaportalLogin(myna_card.transport).login("1234").shown
    assert shown == SHOWN_LOCKED
    assert myna_card.tries_left("auth") == 0


def test_one_try_left(myna_card, myna_transport):
    myna_card.set_tries("auth", 1)
    assert myna_transport is myna_card.transport
    assert MynaportalLogin(myna_transport).login("9999").shown == SHOWN_LOCKED


@pytest.mark.myna_card(profile="face-auth")
def test_face_auth(myna_card):
    assert myna_card.profile == "face-auth"


@pytest.mark.myna_card(pins={"auth": "7777"}, quirks={"status_9000_after_verify": True})
def test_configured(myna_card):
    from harness.sessions import JpkiSession
    s = JpkiSession(myna_card.transport)
    s.verify("auth", "7777")
    assert s.pin_status("auth").verified


def test_each_test_gets_a_fresh_card(myna_card):
    assert myna_card.tries_left("auth") == 3
    myna_card.block()
"""


def test_fixtures_give_a_controllable_card(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(VENDOR_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_works_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(VENDOR_TEST)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_myna_reader_skips_in_process_controls(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(VENDOR_TEST)
    result = pytester.runpytest("--myna-reader", "Some Reader", "-rs")
    result.assert_outcomes(skipped=5)
    result.stdout.fnmatch_lines(["*physical card*"])


VPCD_TEST = """
def test_vpcd(myna_vpcd_reader):
    assert myna_vpcd_reader
"""


def test_vpcd_fixture_skips_without_pcscd(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("harness.pytest_plugin.vpcd_readers", lambda: "pcscd not reachable: x")
    pytester.makepyfile(VPCD_TEST)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*pcscd not reachable*"])


def test_vpcd_fixture_is_an_error_on_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr("harness.pytest_plugin.vpcd_readers", lambda: "pcscd not reachable: x")
    pytester.makepyfile(VPCD_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)


def test_vpcd_fixture_skips_when_the_worker_has_no_slot(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this run's own worker index
    monkeypatch.setattr("harness.pytest_plugin.vpcd_readers", lambda: ["Virtual PCD 00 00"])
    pytester.makepyfile(VPCD_TEST)
    result = pytester.runpytest("--myna-vpcd-slot", "1", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no free vpcd reader from slot 1*"])


def test_vpcd_fixture_passes_over_busy_readers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.pytest_plugin.vpcd_readers", lambda: ["R0", "R1"])
    monkeypatch.setattr(
        "harness.pytest_plugin.wait_for_card", lambda reader, timeout, present=True: True
    )  # both hold a card
    pytester.makepyfile(VPCD_TEST)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*a reader with a card in it is in use*"])


READER_SKIPPED = """
import pytest
from harness.hil.guard import RefusedCommandError
from harness.sessions import JpkiSession


@pytest.mark.myna_card(pins={"auth": "7777"})
def test_marked_but_uses_only_the_transport(myna_transport):
    JpkiSession(myna_transport).verify("auth", "7777")


def test_transport_first_then_controls(myna_transport, myna_card):
    JpkiSession(myna_transport).verify("auth", "9999")
"""
READER_UNMARKED = """

def test_a_vendor_pin_is_never_sent(myna_transport):
    s = JpkiSession(myna_transport)
    for _ in range(3):
        with pytest.raises(RefusedCommandError, match="verifies no PIN"):
            s.verify("auth", "9999")
    assert s.pin_status("auth").tries_left == 3
"""
READER_NAMED = """

def test_the_named_card_is_reached(myna_transport):
    assert JpkiSession(myna_transport).pin_status("auth").tries_left == 3
"""


@pytest.mark.parametrize("named", [False, True], ids=["nobody-opted-in", "destructive-card"])
def test_myna_reader_skips_card_tests_before_any_apdu(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    from emulator.identity import certificate_serial
    from tests.harness.test_guard_bypass import ReaderLike
    from tests.support.cards import fresh_card

    card = fresh_card()
    opened: list[ReaderLike] = []

    def reader(name: str, **_: object) -> ReaderLike:
        transport = ReaderLike(card)
        transport.close = lambda: None  # type: ignore[method-assign]
        opened.append(transport)
        return transport

    monkeypatch.setattr("harness.hil.pcsc.PcscTransport", reader)
    args = ["--myna-reader", "Test Reader", "-rs", "-p", "no:cacheprovider"]
    if named:
        args += ["--myna-destructive-card", certificate_serial(card.state.pki.auth_cert)]
    pytester.makepyfile(READER_SKIPPED + (READER_NAMED if named else READER_UNMARKED))
    result = pytester.runpytest(*args)
    result.assert_outcomes(skipped=2, passed=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs the in-process card*physical card*"] * 2)
    assert len(opened) == 1  # only the unmarked test connected: the skipped ones sent nothing
    assert not [a for a in opened[0].sent if a[1] == 0x20 and len(a) > 5]  # no VERIFY with data
    assert card.pin_record("auth").tries_left == 3
