"""A trace per test: the plugin records every APDU of a test's card (redacted), puts the
decoded trace and the ``trace explain`` findings in a failed test's report (terminal and
JUnit XML), keeps one JSON Lines file per test with ``--myna-trace-dir``, and
``assert_no_phantom_decrements`` fails a test whose app spent a try the user did not."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.trace import Cmd, Control, read_trace
from tests.support.secrets import leaked_forms

pytest_plugins = ["pytester"]

#: The test files compute their PINs (8000 + 642): a failure report shows the test's source,
#: and the point is that the value itself appears nowhere.
SECRET = "8642"

APP = """
import pytest
from harness.errors import WrongPinError
from harness.sessions import JpkiSession, JukiSession


def retrying_login(transport, typed):
    # A bad app: a failed VERIFY is sent again, without asking the user.
    session = JpkiSession(transport)
    for _ in range(2):
        try:
            session.verify("auth", typed)
            return True
        except WrongPinError:
            continue
    return False


def typed():
    return str(8000 + 642)
"""

FAILING = (
    APP
    + """

def test_login(myna_card, myna_transport):
    myna_card.set_tries("sign", 4)
    logged_in = retrying_login(myna_transport, typed())
    assert logged_in


def test_passes(myna_transport):
    JpkiSession(myna_transport).pin_status("auth")
"""
)


@pytest.fixture(autouse=True)
def _no_reader_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYNA_READER", raising=False)


def test_a_failed_test_reports_its_trace_and_findings_in_terminal_and_junit(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(FAILING)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", f"--junitxml={xml}")
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert out.count("myna-hil trace") == 1  # the failed test only
    result.stdout.fnmatch_lines(
        [
            "*myna-hil trace*",
            "trace of *::test_login on in-process, ATR *, redacted",
            "#0 *SELECT*",
            "#* VERIFY*jpki/auth*<redacted 4 bytes>*63C2*",
            "#* VERIFY*jpki/auth*<redacted 4 bytes>*63C1*",
            "*jpki/auth (JPKI auth PIN) 63C1, 1 left ?decrement?",
            "*cause:  automatic retry by the app: identical value re-sent after #* failed",
            "*remedy: fix the app: never repeat a failed VERIFY*",
            "2 decrement(s) in * APDUs: JPKI auth PIN 2",
        ]
    )
    assert leaked_forms(out, SECRET) == []
    case = next(c for c in ET.parse(xml).iter("testcase") if c.get("name") == "test_login")
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert "myna-hil trace" in failure.text
    assert "automatic retry by the app" in failure.text
    assert re.search(r"VERIFY.*jpki/auth.*63C2", failure.text)
    assert leaked_forms(xml.read_text(), SECRET) == []
    passed = next(c for c in ET.parse(xml).iter("testcase") if c.get("name") == "test_passes")
    assert "myna-hil trace" not in ET.tostring(passed, encoding="unicode")


def test_trace_dir_keeps_one_redacted_file_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        FAILING
        + """

@pytest.mark.parametrize("who", ["a/b c", "a_b_c"])
def test_param(myna_transport, who):
    JpkiSession(myna_transport).pin_status("auth")


def test_without_a_card():
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--myna-trace-dir", "traces")
    result.assert_outcomes(failed=1, passed=4)
    files = sorted((pytester.path / "traces").iterdir())
    assert len(files) == 4  # the card-less test has no trace; the two parameters two files
    for f in files:
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.jsonl", f.name), f.name
        assert leaked_forms(f.read_text(), SECRET) == []
    login = next(f for f in files if "test_login" in f.name)
    records = read_trace(login)
    verifies = [r for r in records if isinstance(r, Cmd) and r.pin == "auth" and r.fp]
    assert len(verifies) == 2 and all("<redacted 4 bytes>" in r.hex for r in verifies)
    controls = [r for r in records if isinstance(r, Control)]
    assert [(c.action, c.pin, c.tries) for c in controls] == [("set-tries", "sign", 4)]
    assert records[0].extra["test"].endswith("::test_login")  # type: ignore[union-attr]


PHANTOMS = (
    APP
    + """
from harness.trace import Cause


def test_app_retries(myna_transport, myna_trace):
    retrying_login(myna_transport, typed())
    myna_trace.assert_no_phantom_decrements()


def test_auth_pin_tried_on_juki(myna_transport, myna_trace):
    JpkiSession(myna_transport).verify("auth", "1234")
    with pytest.raises(WrongPinError):
        JukiSession(myna_transport).verify("1234")   # the app reuses the auth PIN
    myna_trace.assert_no_phantom_decrements()


def test_one_wrong_entry_is_the_users(myna_transport, myna_trace):
    with pytest.raises(WrongPinError):
        JpkiSession(myna_transport).verify("auth", typed())
    myna_trace.assert_no_phantom_decrements()
    assert myna_trace.explain().decrements == {"auth": 1}


def test_a_cause_can_be_allowed(myna_transport, myna_trace):
    retrying_login(myna_transport, typed())
    myna_trace.assert_no_phantom_decrements(allow=[Cause.USER_WRONG, Cause.AUTO_RETRY])


def test_the_function_form(myna_card, myna_trace):
    from harness.plugin.tracing import assert_no_phantom_decrements
    retrying_login(myna_card.transport, typed())
    with pytest.raises(AssertionError, match="automatic retry"):
        assert_no_phantom_decrements(myna_trace.records)
"""
)


def test_phantom_decrements_fail_the_test_naming_pin_and_command(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(PHANTOMS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(failed=2, passed=3)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: 1 try/tries spent that the user did not spend:",
            "*JPKI auth PIN (auth): #* VERIFY* in jpki -> 63C1, 1 left: automatic retry by the "
            "app: identical value re-sent after #* failed",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*Juki PIN (juki): #* VERIFY* in juki -> 63C2, 2 left: same value tried on another "
            "application's PIN: this is the JPKI auth PIN's value*",
        ]
    )
    assert leaked_forms(result.stdout.str(), SECRET) == []


VPCD = """
from harness.hil.pcsc import PcscTransport
from harness.sessions import JpkiSession


def test_served(myna_vpcd_card, myna_vpcd_reader, myna_trace):
    assert myna_vpcd_reader == myna_vpcd_card.reader
    myna_vpcd_card.set_tries("auth", 2)
    transport = PcscTransport(myna_vpcd_card.reader)
    try:
        assert JpkiSession(transport).pin_status("auth").tries_left == 2
    finally:
        transport.close()
    assert myna_vpcd_card.tries_left("auth") == 2
    assert myna_vpcd_card.card_id
    assert myna_trace.apdus >= 3      # the served card's traffic, seen by the server
    raise AssertionError("show the trace")
"""


@pytest.mark.vpcd
def test_the_vpcd_card_has_controls_from_a_fixture_and_a_trace(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("smartcard")
    pytester.makepyfile(VPCD)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    if result.parseoutcomes().get("skipped"):
        pytest.skip(f"no vpcd slot: {result.stdout.str()[-300:]}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*myna-hil trace*", "#* VERIFY*jpki/auth*63C2*"])


def test_file_names_are_safe_and_distinct() -> None:
    from harness.plugin.tracing import trace_file_stem

    a, b = trace_file_stem("t.py::test[a/b c]"), trace_file_stem("t.py::test[a_b_c]")
    assert a != b
    assert re.fullmatch(r"[A-Za-z0-9._-]+", a) and len(trace_file_stem("x" * 500)) < 140
    assert Path(trace_file_stem("../../etc/passwd")).name == trace_file_stem("../../etc/passwd")


PYSCARD_APP = """
from smartcard.System import readers


def test_pyscard_app(myna_pyscard_reader, myna_trace):
    myna_pyscard_reader.card.set_tries("auth", 2)
    connection = readers()[0].createConnection()
    connection.connect()
    select = list(bytes.fromhex("00A4040C0AD392F000260100000001"))
    assert connection.transmit(select)[1:] == (0x90, 0x00)
    assert connection.transmit([0x00, 0x20, 0x00, 0x98])[1:] == (0x63, 0xC2)
    connection.disconnect()
    assert myna_trace.apdus == 2
    raise AssertionError("show the trace")
"""


def test_the_pyscard_readers_traffic_is_in_the_trace(pytester: pytest.Pytester) -> None:
    pytest.importorskip("smartcard")
    pytester.makepyfile(PYSCARD_APP)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*myna-hil trace*", "#0 *SELECT jpki*9000*", "#1 *VERIFY (status)*jpki/auth*63C2*"]
    )
