"""Phantom-lockout forensics on the phantom scenarios' traces (redacted and not)."""

from __future__ import annotations

import dataclasses

import pytest

from harness.trace.decode import CommandKind, kind_of
from harness.trace.explain import Cause, explain, format_explanation
from harness.trace.recorder import TraceLog
from harness.trace.records import Cmd
from tests.harness.support import record


@pytest.mark.parametrize("redact", [True, False])
def test_tearing_is_explained(redact: bool) -> None:
    expl = explain(record("phantom-tearing", redact=redact))
    assert expl.causes() == [Cause.TEARING] * 3
    assert [f.tries_left for f in expl.findings] == [2, 1, 0]
    assert all(f.pin == "auth" and f.app == "jpki" and f.sw == "lost" for f in expl.findings)
    assert expl.decrements == {"auth": 3}
    text = format_explanation(expl)
    assert "power lost" in text and "counter re-set" in text and "now blocked" in text


@pytest.mark.parametrize("redact", [True, False])
def test_app_habits_are_attributed_to_the_app(redact: bool) -> None:
    expl = explain(record("phantom-app-retry", redact=redact))
    assert [(f.cause, f.pin) for f in expl.findings] == [
        (Cause.APP_TRANSFORM, "sign"),
        (Cause.APP_TRANSFORM, "sign"),
        (Cause.APP_TRANSFORM, "sign"),
        (Cause.USER_WRONG, "auth"),
        (Cause.AUTO_RETRY, "auth"),
        (Cause.OTHER_APPLICATION, "auth"),
        (Cause.OTHER_APPLICATION, "juki"),
    ]
    details = [f.detail for f in expl.findings]
    assert "case" in details[0] and "full-width" in details[1] and "whitespace" in details[2]
    assert "input-helper PIN" in details[5]
    indexes = [f.index for f in expl.findings]
    assert indexes == sorted(indexes) and len(set(indexes)) == 7


def test_status_misread_is_caught_without_a_decrement() -> None:
    expl = explain(record("phantom-status-quirk"))
    assert expl.causes() == [Cause.STATUS_MISREAD]
    f = expl.findings[0]
    assert not f.decrement and f.sw == "9000" and "0 tries (locked)" in f.detail
    assert expl.decrements == {}
    assert any("9000" in w for w in expl.warnings)


def test_plain_lockout_is_the_users_doing() -> None:
    expl = explain(record("lockout-auth"))
    assert expl.causes() == [Cause.USER_WRONG] * 3
    assert "blocked" in format_explanation(expl)


def test_no_decrement_says_so() -> None:
    assert format_explanation(explain(record("card-info"))).startswith("no retry-counter")


def test_counter_reset_starts_a_new_value_epoch() -> None:
    # After the counter sets a new value, failures with the old one are wrong values.
    expl = explain(record("kiosk-reset-auth"))
    assert expl.causes() == [Cause.USER_WRONG] * 3


def _verify_sign(log: TraceLog, value: bytes, sw: str) -> None:
    """One VERIFY of the JPKI signing password as the panel's log records it."""
    apdu = bytes.fromhex(f"00200080{len(value):02X}") + value
    log.answer(log.command(apdu).i, apdu, bytes.fromhex(sw), 0.001)


def _sign_selected() -> TraceLog:
    log = TraceLog("test", bytes.fromhex("3B00"))
    for apdu in ("00A4040C0AD392F000260100000001", "00A4020C02001B"):
        log.answer(log.command(bytes.fromhex(apdu)).i, bytes.fromhex(apdu), b"\x90\x00", 0.001)
    return log


@pytest.mark.parametrize("control", [None, "set-pin", "new-card"])
def test_a_re_set_by_control_starts_a_new_value_epoch(control: str | None) -> None:
    # The old value in lower case: the app's doing, unless the value was re-set since.
    log = _sign_selected()
    _verify_sign(log, b"ABC123", "9000")
    if control is not None:
        log.control("panel", control, pin="sign" if control == "set-pin" else None)
    _verify_sign(log, b"abc123", "63C4")
    expected = Cause.APP_TRANSFORM if control is None else Cause.USER_WRONG
    assert explain(log.records).causes() == [expected]


def test_a_control_between_two_failures_is_an_interaction() -> None:
    log = _sign_selected()
    _verify_sign(log, b"WRONG1", "63C4")
    _verify_sign(log, b"WRONG1", "63C3")
    log.control("panel", "set-tries", pin="sign", tries=5)
    _verify_sign(log, b"WRONG1", "63C4")
    assert explain(log.records).causes() == [Cause.USER_WRONG, Cause.AUTO_RETRY, Cause.USER_WRONG]


def test_findings_follow_the_command_not_its_display_name() -> None:
    """Renaming a label must not turn a finding off: forensics read the header, not 'name'."""
    records = record("phantom-app-retry", redact=True)
    renamed = [dataclasses.replace(r, name="renamed") if isinstance(r, Cmd) else r for r in records]
    unnamed = [dataclasses.replace(r, name=None) if isinstance(r, Cmd) else r for r in records]
    assert explain(records).causes()  # the trace has findings to lose
    assert explain(renamed).causes() == explain(records).causes()
    assert explain(unnamed) == explain(records)


@pytest.mark.parametrize(
    ("hex_text", "kind"),
    [
        ("00200098", CommandKind.VERIFY_STATUS),
        ("0020009800", CommandKind.VERIFY_STATUS),
        ("00200098 04 <redacted 4 bytes>", CommandKind.VERIFY),
        ("00200098 000004 <redacted 4 bytes>", CommandKind.VERIFY),  # extended
        ("0C200098 04 <redacted 4 bytes>", CommandKind.VERIFY),  # secure-messaging class
        ("002000980431323334", CommandKind.VERIFY),  # unredacted
        ("00200098000004313233340000", CommandKind.VERIFY),  # unredacted, extended
        ("00240198 04 <redacted 4 bytes>", CommandKind.CHANGE),
        ("8032009C 04 <redacted 4 bytes>", CommandKind.CHANGE),
        ("002C0298 04 <redacted 4 bytes>", CommandKind.RESET_NEW_VALUE),
        ("002C0398", CommandKind.RESET_UNBLOCK),
        ("00A4040C0AD392F000260100000001", CommandKind.SELECT),
        ("00B0000000", CommandKind.READ),
        ("802A008020" + "00" * 32 + "00", CommandKind.OTHER),
        ("0020009809313233", CommandKind.MALFORMED),
        ("zz", CommandKind.MALFORMED),
    ],
)
def test_command_kinds(hex_text: str, kind: CommandKind) -> None:
    assert kind_of(hex_text) is kind


@pytest.mark.parametrize("redact", [True, False])
def test_check_number_lockout_is_explained_with_its_label(redact: bool) -> None:
    """The identity app's mistyped check number B: ten decrements of text-b, labelled."""
    expl = explain(record("lockout-check-b", redact=redact))
    assert expl.causes() == [Cause.USER_WRONG] * 10
    assert {(f.app, f.pin) for f in expl.findings} == {("text", "text-b")}
    assert [f.tries_left for f in expl.findings] == list(range(9, -1, -1))
    assert expl.decrements == {"text-b": 10}
    text = format_explanation(expl)
    assert "text-AP check number B" in text and "now blocked" in text
