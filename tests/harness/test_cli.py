"""``myna-hil`` end to end through ``main()``: output, exit status, files written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.identity import certificate_serial
from harness.cards import new_card
from harness.cli import main
from harness.cli import run as cli_run
from harness.cli import status as cli_status
from harness.scenarios.runner import all_units
from tests.harness.support import PhysicalLike


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_unit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    for u in all_units():
        assert u.name in out


def test_run_all_passes_with_tables_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", "--all")
    assert code == 0
    n = len(all_units())
    assert f"{n} scenario units: {n} passed" in out.splitlines()[-1]
    assert "✓ phantom-tearing" in out and "expected" in out and "✗" not in out
    assert err == ""  # no progress indicator when stderr is not a TTY


def test_run_quiet_prints_only_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "run", "-q", "lockout-juki")
    assert code == 0 and "✓" not in out and "2 scenario units: 2 passed" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], "name the scenarios"),
        (["run", "nope"], "unknown scenario 'nope'; known: lockout-auth"),
        (["run", "--all", "lockout-auth"], "not both"),
        (["run", "--destructive-card", "1F", "lockout-auth"], "only applies with --reader"),
        (["run", "--destructive", "lockout-auth"], "replaced by --destructive-card ID"),
        (["run", "--allow-blocking", "lockout-auth"], "needs --destructive-card"),
        (["run", "--reader", "R", "--destructive-card", "xyz", "card-info"], "not a hex"),
        (["run", "--reader", "R", "--unredacted-secrets", "card-info"], "always redacted"),
        (["trace"], "trace needs an action"),
        (["run", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err
    if "--bogus" not in argv and "xyz" not in argv:  # argparse's own errors add the usage
        assert len(err.strip().splitlines()) == 1


def test_failing_scenario_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.scenarios import runner

    def broken(unit):  # type: ignore[no-untyped-def]
        from harness.controls import InProcessCard

        card = new_card(unit.profile)
        card.set_tries("juki", 2)
        c = InProcessCard(card)
        return c.transport, c

    monkeypatch.setattr(runner, "inprocess_opener", broken)
    code, out, _ = run(capsys, "run", "lockout-juki")
    assert code == 1
    assert "✗ lockout-juki " in out and "FAILED" in out.splitlines()[-1]
    assert "63C1" in out  # expected 63C2, got 63C1


def test_json_and_traces_are_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(
        capsys,
        "run",
        "phantom-tearing",
        "--json",
        str(tmp_path / "r.json"),
        "--trace",
        str(tmp_path / "tr"),
    )
    assert code == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["ok"] and doc["units"][0]["unit"] == "phantom-tearing"
    assert all(s["ok"] for s in doc["units"][0]["steps"])
    trace = tmp_path / "tr" / "phantom-tearing.jsonl"
    code, out, _ = run(capsys, "trace", "explain", str(trace))
    assert code == 0 and out.count("power lost between decrement and restore") == 3
    code, out, _ = run(capsys, "trace", "show", str(trace))
    assert code == 0 and "NO ANSWER (card lost)" in out and "<redacted 4 bytes>" in out
    code, out, _ = run(capsys, "trace", "replay", str(trace))
    assert code == 0 and "no divergence" in out


def test_unredacted_secrets_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "run", "lockout-juki", "--trace", str(tmp_path), "--unredacted-secrets")
    assert "30303030" in (tmp_path / "lockout-juki.jsonl").read_text()  # "0000"
    run(capsys, "run", "lockout-juki", "--trace", str(tmp_path))
    assert "30303030" not in (tmp_path / "lockout-juki.jsonl").read_text()


def test_replay_divergence_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "run", "lockout-juki", "--trace", str(tmp_path))
    code, out, _ = run(
        capsys,
        "trace",
        "replay",
        str(tmp_path / "lockout-juki.jsonl"),
        "--scenario",
        "lockout-helper",
    )
    assert code == 1 and "diverged at APDU #0" in out


def test_trace_bad_file_is_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text("hello\n")
    code, _, err = run(capsys, "trace", "explain", str(tmp_path / "x.jsonl"))
    assert code == 2 and "not JSON" in err


def test_status_spends_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = new_card()
    card.set_tries("sign", 2)
    monkeypatch.setattr(cli_status, "open_reader", lambda name: PhysicalLike(card))
    code, out, _ = run(capsys, "status", "--reader", "Test Reader")
    assert code == 0 and "2/5 tries" in out and "auth certificate serial" in out
    assert f"card ID: {certificate_serial(card.state.pki.auth_cert)}" in out
    assert card.pin_record("sign").tries_left == 2


def test_reader_runs_are_guarded(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = new_card()
    card_id = certificate_serial(card.state.pki.auth_cert)
    monkeypatch.setattr(cli_run, "open_reader", lambda name: PhysicalLike(card))
    code, out, _ = run(capsys, "run", "lockout-auth", "card-info", "--reader", "R")
    assert code == 0 and "skipped: destructive" in out and "not opted in" in out
    assert f"card ID {card_id}" in out
    assert card.pin_record("auth").tries_left == 3
    code, out, _ = run(
        capsys, "run", "lockout-auth", "--reader", "R", "--destructive-card", card_id
    )
    assert code == 0 and "skipped: blocks a PIN: needs --allow-blocking" in out
    code, out, _ = run(
        capsys,
        "run",
        "lockout-auth",
        "--reader",
        "R",
        "--destructive-card",
        card_id.lower(),
        "--allow-blocking",
    )
    assert code == 0 and "1 passed" in out
    assert card.pin_record("auth").tries_left == 3  # restored after the unit


def test_a_wrong_card_id_stops_the_run_before_any_try(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = new_card()
    sent: list[bytes] = []

    class Counting(PhysicalLike):
        def transmit(self, apdu: bytes) -> bytes:
            sent.append(apdu)
            return super().transmit(apdu)

    monkeypatch.setattr(cli_run, "open_reader", lambda name: Counting(card))
    code, _, err = run(
        capsys,
        "run",
        "lockout-auth",
        "--reader",
        "R",
        "--destructive-card",
        "DEADBEEF",
        "--allow-blocking",
    )
    assert code == 2 and "does not name the card" in err and "DEADBEEF" in err
    assert sent and {a[1] for a in sent} <= {0xA4, 0xB0}  # SELECT and READ BINARY only
    assert card.pin_record("auth").tries_left == 3


def test_no_pcsc_reader_is_a_clear_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.transport import TransportError

    def fail(name: str) -> None:
        raise TransportError(f"no reader named {name!r}; readers: none")

    monkeypatch.setattr("harness.hil.pcsc.PcscTransport", fail, raising=False)
    code, _, err = run(capsys, "status", "--reader", "Nope")
    assert code == 2 and "Nope" in err


def test_golden_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "trace", "golden")
    assert code == 0 and f"{len(all_units())} of {len(all_units())}" in out


def test_progress_only_on_a_tty() -> None:
    import io

    from harness.cli.output import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(stream)
        p(0, 2, "lockout-auth")
        p(2, 2, "")
    assert "[ 1/2] lockout-auth" in tty.getvalue() and pipe.getvalue() == ""


def test_traffic_log_is_redacted_even_for_unredacted_traces(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from emulator import TRAFFIC

    caplog.set_level(TRAFFIC)
    run(capsys, "run", "lockout-juki", "--trace", str(tmp_path), "--unredacted-secrets")
    assert "30303030" not in caplog.text and "<redacted 4 bytes>" in caplog.text


def test_run_takes_a_former_scenario_name_and_says_the_new_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "lockout-text@face-auth", "-q"]) == 0
    captured = capsys.readouterr()
    assert "note: scenario 'lockout-text@face-auth' is now called 'lockout-helper@face-auth'" in (
        captured.err
    )
    assert "1 scenario unit: 1 passed" in captured.out or "1 passed" in captured.out
