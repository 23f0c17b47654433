"""The plugin catches mistakes: unknown names are errors that list the known ones, the marker
takes the profile positionally and can set tries, check numbers and the ATR form, and
``MYNA_READER`` works like ``--myna-reader``. Run with pytest's own pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

KNOWN_PINS = "known: auth, sign, juki, helper, common, text-a, text-b, surface-a, surface-b"


@pytest.fixture(autouse=True)
def _no_reader_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNA_READER", raising=False)


CONTROL_TYPOS = [
    ('block("auht")', f"unknown PIN 'auht' (did you mean 'auth'?); {KNOWN_PINS}"),
    ('set_tries("sgin", 1)', "unknown PIN 'sgin' (did you mean 'sign'?)"),
    ('tries_left("text")', "unknown PIN 'text'"),
    ('set_pins(jukki="1111")', "unknown PIN 'jukki' (did you mean 'juki'?)"),
    (
        "set_quirks(status_9000=True)",
        "unknown quirk 'status_9000' (did you mean 'status_9000_after_verify'?); "
        "known: status_9000_after_verify, reselect_keeps_verification",
    ),
    ('set_atr_form("contactles")', "unknown ATR form 'contactles' (did you mean"),
    ('change_profile("face")', "unknown profile 'face' (did you mean 'face-auth'?)"),
]


def test_an_unknown_name_in_a_control_fails_the_test_with_the_known_names(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        "\n".join(
            f"def test_{n}(myna_card):\n    myna_card.{call}\n"
            for n, (call, _) in enumerate(CONTROL_TYPOS)
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(failed=len(CONTROL_TYPOS))
    out = result.stdout.str()
    for _, message in CONTROL_TYPOS:
        assert f"UnknownNameError: {message}" in out, message


def test_a_bad_name_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from harness.controls import UnknownNameError
        from harness.sessions import JpkiSession

        def test_it(myna_card):
            with pytest.raises(UnknownNameError):
                myna_card.block("auth", "auht")     # checked before anything is blocked
            with pytest.raises(UnknownNameError):
                myna_card.set_pins(auth="1111", sigh="ABC123")
            assert myna_card.tries_left("auth") == 3
            JpkiSession(myna_card.transport).verify("auth", "1234")  # the old value still
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


MARKER_TYPOS = [
    (
        'pin={"auth": "7777"}',
        "unknown myna_card marker key 'pin' (did you mean 'pins'?); "
        "known: profile, pins, tries, quirks, atr, check_numbers",
    ),
    ('pins={"auht": "7777"}', f"unknown PIN 'auht' (did you mean 'auth'?); {KNOWN_PINS}"),
    ('tries={"helpr": 1}', "unknown PIN 'helpr' (did you mean 'helper'?)"),
    ('quirks={"reselect": True}', "unknown quirk 'reselect'"),
    (
        '"face_auth"',
        "unknown profile 'face_auth' (did you mean 'face-auth'?); known: standard, face-auth",
    ),
    ('atr="nfc"', "unknown ATR form 'nfc'; known: contact, contact-short, contactless"),
    ('check_numbers={"a": "1"}', "unknown check number 'a'; known: text-a, text-b"),
    ('"face-auth", profile="standard"', "the profile is given twice"),
    ('pins={"auth": 7777}', "pins['auth'] must be a str, not int"),
    ('check_numbers=False, tries={"text-a": 1}', "check_numbers=False, yet text-a"),
]


def test_a_bad_marker_stops_the_run_at_collection(pytester: pytest.Pytester) -> None:
    body = "".join(
        f"@pytest.mark.myna_card({marker})\ndef test_{n}(myna_card):\n"
        "    raise AssertionError('never run')\n\n"
        for n, (marker, _) in enumerate(MARKER_TYPOS)
    )
    pytester.makepyfile(
        "import pytest\n\n"
        + body
        + "def test_unmarked():\n    raise AssertionError('never run either')\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    for n, (_, message) in enumerate(MARKER_TYPOS):
        assert f"::test_{n}: @pytest.mark.myna_card: {message}" in err, message
    assert "never run" not in result.stdout.str()


def test_a_value_the_card_refuses_fails_setup_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.myna_card(pins={"auth": "12"})
        def test_short_pin(myna_card):
            pass

        @pytest.mark.myna_card(tries={"sign": 9})
        def test_too_many_tries(myna_card):
            pass

        @pytest.mark.myna_card("face-auth", tries={"auth": 1})
        def test_face_auth_has_no_auth_pin(myna_card):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.myna_card: the JPKI user-authentication PIN must be 4 digits (got 2*",
            "*@pytest.mark.myna_card: tries for 'sign' must be 0..5*",
            "*@pytest.mark.myna_card: this face-auth card has no 'auth' PIN*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()


MARKED = """
import pytest
from emulator.profiles import ATRS
from harness.sessions import JpkiSession, TextSession


@pytest.mark.myna_card("face-auth")
def test_positional_profile(myna_card):
    assert myna_card.profile == "face-auth"


@pytest.mark.myna_card(tries={"auth": 1, "text-b": 2})
def test_tries(myna_card):
    assert myna_card.tries_left("auth") == 1
    assert myna_card.tries_left("text-b") == 2
    assert JpkiSession(myna_card.transport).pin_status("auth").tries_left == 1


@pytest.mark.myna_card(atr="contactless")
def test_atr(myna_card):
    assert myna_card.transport.atr == ATRS["contactless"]


@pytest.mark.myna_card(check_numbers=False)
def test_without_check_numbers(myna_card):
    assert "text-a" not in myna_card.card.state.pins


@pytest.mark.myna_card(check_numbers={"text-b": "01020320301234"})
def test_check_number_value(myna_card):
    TextSession(myna_card.transport).verify_check_number("b", "01020320301234")


@pytest.mark.myna_card(pins={"helper": "9999"}, quirks={"reselect_keeps_verification": True})
def test_pins_and_quirks(myna_card):
    TextSession(myna_card.transport).verify("9999")
    assert myna_card.card.state.quirks.reselect_keeps_verification


def test_then_a_fresh_default_card(myna_card):
    # after the tests above reused the card object: default state again
    assert myna_card.profile == "standard"
    assert myna_card.transport.atr == ATRS["contact"]
    assert myna_card.tries_left("auth") == 3 and myna_card.tries_left("text-b") == 10
    assert not myna_card.card.state.quirks.reselect_keeps_verification
    TextSession(myna_card.transport).verify("2345")
"""


def test_the_marker_configures_the_card(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=7)


def test_a_test_that_changes_its_card_leaves_the_next_one_a_fresh_card(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from emulator.profiles import ATRS

        def test_a_changes_everything(myna_card):
            myna_card.change_profile("face-auth")
            myna_card.set_atr_form("legacy-juki")
            myna_card.block()
            myna_card.tear_after_decrement(2)

        def test_b_gets_a_fresh_card(myna_card):
            assert myna_card.profile == "standard"
            assert myna_card.transport.atr == ATRS["contact"]
            assert [myna_card.tries_left(n) for n in ("auth", "sign", "juki", "helper")] == [
                3, 5, 3, 3]
            assert myna_card.card.faults.tear_after_decrement == 0
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_myna_reader_from_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYNA_READER", "Some Reader")
    pytester.makepyfile(
        """
        def test_controls(myna_card):
            pass
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs the in-process card*physical card*"])


def test_the_marker_is_described_in_pytest_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*myna_card(profile='standard', *pins=*tries=*atr=*"])
