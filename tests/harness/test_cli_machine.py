"""Machine-readable output on both CLIs: ``run --junit``, ``--json -`` as stdout everywhere,
``--json`` on list / status / soak / trace explain, ``-v`` before or after the command, and
one spelling for slots (``--slot``; the old ones still parse)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator import cli as emu_cli
from harness.cards import new_card
from harness.cli import build_parser, main
from harness.cli.junit import failure_message, to_junit
from harness.cli.soak import checked_slots, soak_json, tearing_json
from harness.controls import InProcessCard
from harness.reliability.soak import SlotStats, SoakResult
from harness.reliability.tearing import TearingResult
from harness.scenarios import runner
from harness.scenarios.base import ScenarioResult, StepResult
from harness.scenarios.runner import all_units
from tests.support.secrets import leaked_forms


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- run --junit ----------------------------------------------------------------------------


def test_junit_has_one_testcase_per_unit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    xml_file = tmp_path / "out" / "scenarios.xml"
    code, out, _ = run(capsys, "run", "lockout-juki", "card-info", "--junit", str(xml_file))
    assert code == 0 and "4 scenario units: 4 passed" in out
    suite = ET.parse(xml_file).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "4" and suite.get("failures") == "0"
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == ["lockout-juki", "lockout-juki@face-auth", "card-info", "card-info@face-auth"]
    assert all(c.find("failure") is None for c in suite.iter("testcase"))


def test_junit_failure_message_is_the_failing_step(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def spent_one(unit: runner.Unit) -> tuple[object, InProcessCard]:
        card = new_card(unit.profile)
        card.set_tries("juki", 2)  # the scenario expects 3 tries: its first entry step fails
        c = InProcessCard(card)
        return c.transport, c

    monkeypatch.setattr(runner, "inprocess_opener", spent_one)
    code, out, err = run(capsys, "run", "lockout-juki", "--junit", "-")
    assert code == 1
    assert "✗ lockout-juki" in err  # the human output moved to stderr
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    failure = suite.find("testcase/failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert message == "juki: wrong VERIFY 1: expected 63C2, got 63C1"
    assert f"FAIL  {message}" in (failure.text or "")


def test_junit_of_skipped_and_stopped_units() -> None:
    skipped = ScenarioResult("kiosk-expired", "standard", (), 0.0, skipped="needs the clock")
    stopped = ScenarioResult(
        "card-info", "standard", (StepResult("a", "x", "x"),), 0.1, error="transport lost"
    )
    assert failure_message(skipped) is None
    assert failure_message(stopped) == "stopped: transport lost"
    root = ET.fromstring(to_junit([skipped, stopped], 0.1, "vpcd slot 3"))
    cases = root.findall("testsuite/testcase")
    assert cases[0].find("skipped") is not None
    assert cases[0].find("skipped").get("message") == "needs the clock"  # type: ignore[union-attr]
    assert cases[1].find("failure").get("message") == "stopped: transport lost"  # type: ignore[union-attr]
    assert root.find("testsuite/properties/property").get("value") == "vpcd slot 3"  # type: ignore[union-attr]


def test_junit_and_json_cannot_both_take_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", "lockout-juki", "--json", "-", "--junit", "-")
    assert code == 2 and "only one of them" in err


def test_junit_into_a_directory_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "run", "--all", "--junit", str(tmp_path))
    assert code == 2 and out == ""
    assert err == f"myna-hil: error: --junit {tmp_path}: is a directory, not a file\n"


# --- --json - ---------------------------------------------------------------------------------


def test_run_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", "lockout-auth", "--json", "-")
    assert code == 0
    doc = json.loads(out)  # nothing but the document on stdout
    assert doc["format"] == "myna-hil-results" and doc["units"][0]["unit"] == "lockout-auth"
    assert "1 scenario units: 1 passed" in err


def test_list_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "list", "--json", "-")
    assert code == 0
    doc = json.loads(out)
    assert [u["unit"] for u in doc["units"]] == [u.name for u in all_units()]
    face = next(u for u in doc["units"] if u["unit"] == "card-info@face-auth")
    assert face["profile"] == "face-auth" and face["scenario"] == "card-info"
    assert {u["kind"] for u in doc["units"]} == {"in-process", "destructive", "read-only"}
    code, out, _ = run(capsys, "list", "--json", str(tmp_path / "list.json"))
    assert "lockout-auth" in out  # with a file, the table still goes to stdout
    assert json.loads((tmp_path / "list.json").read_text()) == doc


def test_status_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "card.db"
    assert emu_cli.main(["init", "--state", str(state), "--pin", "auth=7777"]) == 0
    select_jpki, select_auth_pin = "00A4040C0AD392F000260100000001", "00A4020C020018"
    wrong = "0020008004 31313131"
    assert emu_cli.main(["apdu", "--state", str(state), select_jpki, select_auth_pin, wrong]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "status", "--state", str(state), "--json", "-")
    assert code == 0 and "JPKI auth PIN" in err
    doc = json.loads(out)
    pins = {p["pin"]: p for p in doc["pins"]}
    assert pins["auth"]["tries_left"] == 2 and pins["auth"]["max_tries"] == 3
    assert pins["sign"]["tries_left"] == 5 and not pins["sign"]["blocked"]
    assert len(doc["card_id"]) > 8 and doc["atr"].startswith("3B")
    assert leaked_forms(out, "7777", "1111") == []


def test_status_json_of_a_face_auth_card(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "face.db"
    assert emu_cli.main(["init", "--state", str(state), "--profile", "face-auth"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "status", "--state", str(state), "--json", "-")
    pins = {p["pin"]: p for p in json.loads(out)["pins"]}
    assert code == 0 and pins["sign"] == {
        "pin": "sign",
        "label": "JPKI signing password",
        "present": False,
    }


def test_trace_explain_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "phantom-app-retry", "--trace", str(tmp_path)]) == 0
    capsys.readouterr()
    code, out, err = run(
        capsys, "trace", "explain", str(tmp_path / "phantom-app-retry.jsonl"), "--json", "-"
    )
    assert code == 0 and "decrement" in err
    doc = json.loads(out)
    assert doc["format"] == "myna-hil-explanation"
    assert sum(doc["decrements"].values()) == len([f for f in doc["findings"] if f["decrement"]])
    causes = {f["cause"] for f in doc["findings"]}
    assert causes and all(c.isidentifier() for c in causes)
    assert all(f["remedy"] for f in doc["findings"])


def test_soak_and_tearing_json_documents() -> None:
    stats = SlotStats(4, "emulator", apdus=100, errors=1, first_error="6581")
    stats.latency.add(0.0002)
    doc = soak_json(SoakResult(2.0, [stats], rss_start_kib=1000, rss_end_kib=1010))
    assert doc["ok"] is False and doc["errors"] == 1 and doc["rss_growth"] == 0.01
    assert doc["slots"][0]["first_error"] == "6581" and 150 < doc["slots"][0]["p50_us"] < 250
    tear = tearing_json(TearingResult(kills=3, torn={"verify": 2}, apdus=50, checks=18))
    assert tear["ok"] is True and tear["torn"] == {"verify": 2} and tear["violations"] == []
    json.dumps(doc), json.dumps(tear)


def test_myna_emu_show_json_to_stdout_or_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "c.db"
    assert emu_cli.main(["init", "--state", str(state)]) == 0
    capsys.readouterr()
    docs = []
    for extra in (["--json"], ["--json", "-"]):
        assert emu_cli.main(["show", "--state", str(state), *extra]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert emu_cli.main(["show", "--state", str(state), "--json", str(tmp_path / "s.json")]) == 0
    assert capsys.readouterr().out == ""
    docs.append(json.loads((tmp_path / "s.json").read_text()))
    assert docs[0] == docs[1] == docs[2] and docs[0]["profile"] == "standard"
    assert emu_cli.main(["show", "--state", str(state), "--json", str(tmp_path)]) == 2
    assert "cannot write" in capsys.readouterr().err


# --- -v anywhere, one slot spelling --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["-v", "list"], ["list", "-v"], ["-v", "trace", "show", "-v", "x"], ["ci", "pcscd", "-v"]],
)
def test_verbose_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.verbose + args.verbose_after >= 1


def test_verbose_after_the_command_logs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "lockout-juki", "-vv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert "TRAFFIC harness" in proc.stderr  # -vv: APDU hex


def test_myna_emu_verbose_before_or_after(tmp_path: Path) -> None:
    state = tmp_path / "c.db"
    for argv in (["-v", "init", "--state", str(state)], ["show", "--state", str(state), "-v"]):
        proc = subprocess.run(
            [sys.executable, "-m", "emulator", *argv], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
    parser = emu_cli.build_parser()
    args = parser.parse_args(["-v", "serve", "--memory", "-v"])
    assert args.verbose_top == 1 and args.verbose == 1


def test_one_slot_spelling_with_the_old_ones_hidden() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "--all", "--slot", "3"]).slot == 3
    assert parser.parse_args(["run", "--all", "--vpcd-slot", "3"]).slot == 3
    assert checked_slots(parser.parse_args(["soak", "--slot", "4", "--slot", "5"]).slot) == [4, 5]
    assert checked_slots(parser.parse_args(["soak", "--slot", "4,5"]).slot) == [4, 5]
    assert checked_slots(parser.parse_args(["soak", "--slots", "4,5"]).slot) == [4, 5]
    assert checked_slots(parser.parse_args(["soak"]).slot) == [0, 1]
    with pytest.raises(ValueError, match="one or two different slots"):
        checked_slots([4, 4])
    for command in ("run", "soak"):
        sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        shown = sub.format_help()
        assert "--slot" in shown and "--vpcd-slot" not in shown and "--slots" not in shown
