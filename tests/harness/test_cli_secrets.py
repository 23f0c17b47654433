"""No PIN value in anything ``myna-hil`` writes: output, logs at every level, traces, reports.

Every value the scenario catalogue types (the cards' defaults and the new values the
scenarios set) is searched in the form it travels in an APDU (hex, any case, spaced or
not), and the signing passwords with letters that are not hex digits also as text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.pins import DEFAULT_PINS
from harness.cli import main
from harness.scenarios.catalogue import NEW
from tests.support.secrets import leaked_forms

VALUES = sorted({*DEFAULT_PINS.values(), *NEW.values()})


def test_a_full_run_with_traces_and_traffic_logs_writes_no_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(1)
    traces, report = tmp_path / "traces", tmp_path / "report.json"
    code = main(["-vv", "run", "--all", "--trace", str(traces), "--json", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    texts = {"stdout": out, "stderr": err, "report": report.read_text()}
    texts |= {f"log:{r.levelname}": r.getMessage() for r in caplog.records}
    texts |= {f"trace:{p.name}": p.read_text() for p in sorted(traces.glob("*.jsonl"))}
    assert len([k for k in texts if k.startswith("trace:")]) >= 20, "the traces were written"
    assert any("<redacted" in t for t in texts.values()), "secret commands were recorded"
    explained = [main(["trace", "explain", str(p)]) for p in sorted(traces.glob("*.jsonl"))[:5]]
    assert set(explained) == {0}
    texts["explain"] = capsys.readouterr().out
    json.loads(texts["report"])
    for where, text in texts.items():
        assert leaked_forms(text, *VALUES) == [], f"a PIN value appears in {where}"
