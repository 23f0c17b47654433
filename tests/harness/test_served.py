"""``myna-hil run --all --vpcd-slot N``: the catalogue through a real pcscd + vpcd.

The harness serves the emulator itself, opts that card in by its own identity, and every
APDU goes through pyscard -> pcscd -> vpcd -> the card: the same scenarios, the same
expected outcomes as in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.vpcd import reader_name
from harness.cli import main
from tests.support.pcscd import ensure_pcscd
from tests.support.slots import slot_lock

pytestmark = pytest.mark.vpcd

#: A slot of its own (a fourth reader.conf entry; ci/test.sh starts pcscd with eight slots).
SLOT = 6


@pytest.fixture(scope="module", autouse=True)
def _pcscd() -> None:
    ensure_pcscd()
    from harness.hil.pcsc import list_readers

    if reader_name(SLOT) not in list_readers():
        pytest.fail(
            f"pcscd has no reader {reader_name(SLOT)!r} (slot {SLOT}); start it with "
            "MYNA_VPCD_EXTRA=3 ci/pcscd-start.sh",
            pytrace=False,
        )


def test_reader_names_follow_reader_conf_entries() -> None:
    assert [reader_name(n) for n in (0, 1, 2, 5, 6)] == [
        "Virtual PCD 00 00",
        "Virtual PCD 00 01",
        "Virtual PCD 1 00 00",
        "Virtual PCD 2 00 01",
        "Virtual PCD 3 00 00",
    ]


def test_whole_catalogue_through_vpcd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "run.json"
    traces = tmp_path / "traces"
    with slot_lock(SLOT):  # tests/panel/test_browser.py serves in this slot too
        code = main(
            [
                "run",
                "--all",
                "--vpcd-slot",
                str(SLOT),
                "--json",
                str(report),
                "--trace",
                str(traces),
            ]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"served in vpcd slot {SLOT}" in out
    doc = json.loads(report.read_text())
    assert doc["transport"] == f"vpcd slot {SLOT}"
    results = {r["unit"]: r for r in doc["units"]}
    skipped = {n for n, r in results.items() if r.get("skipped")}
    # Only the simulated in-card power loss stays in-process.
    assert skipped == {"phantom-tearing"}
    assert all(r["ok"] for n, r in results.items() if n not in skipped)
    assert len(results) == 27
    # The traces went through PC/SC: the recorder names the reader's transport.
    meta = json.loads((traces / "lockout-auth.jsonl").read_text().splitlines()[0])
    assert reader_name(SLOT) in meta["transport"]
    # The relying-party units ran their revocation service beside the served card.
    log = (traces / "phantom-revoked-after-move.service.jsonl").read_text().splitlines()
    assert '"type": "revoked"' in log[4] and '"status": "revoked"' in log[-1]


def test_slot_without_vpcd_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "lockout-auth", "--vpcd-slot", "-1"])
    assert code == 2
    assert "--slot must be >= 0" in capsys.readouterr().err


def test_vpcd_slot_and_reader_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--all", "--vpcd-slot", "1", "--reader", "X"]) == 2
    assert "not allowed with" in capsys.readouterr().err
