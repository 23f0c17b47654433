"""The service log: written, read back, and refused in one line when it is not right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.revocation.log import (
    SERVICE_LOG_FORMAT,
    ServiceLogError,
    parse_service_log,
)
from tests.revocation.conftest import Service


def test_round_trip(svc: Service, tmp_path: Path) -> None:
    svc.clock.advance(days=1)
    svc.registry.basic_fact_changed("address")
    path = svc.registry.log.save(tmp_path / "service.jsonl")
    assert parse_service_log(path) == svc.registry.log.events
    head = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert head["format"] == SERVICE_LOG_FORMAT and head["version"] == 1


HEAD = {"seq": 0, "type": "meta", "format": SERVICE_LOG_FORMAT, "version": 1}
EVENT = {
    "seq": 1,
    "type": "decision",
    "via": "ocsp",
    "status": "good",
    "clock": "2026-04-01T09:00:00+00:00",
}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty file"),
        ([EVENT], "line 1: not a myna-hil-service-log file (no meta record first)"),
        ([{**HEAD, "version": 2}], "line 1: service log version 2 is not readable here"),
        ([{**HEAD, "format": "x"}], "line 1: not a myna-hil-service-log file (field 'format')"),
        ([HEAD, HEAD], "line 2: a meta record may only be the first line"),
        ([HEAD, {**EVENT, "status": "fine"}], "line 2: field 'status' must be one of"),
        ([HEAD, {**EVENT, "extra": 1}], "line 2: decision record: unknown field 'extra'"),
        ([HEAD, {**EVENT, "serial": "12ab"}], "line 2: field 'serial' must be upper-case hex"),
        ([HEAD, {**EVENT, "clock": "2026-04-01T09:00:00"}], "line 2: field 'clock' must be an ISO"),
        (
            [HEAD, {k: v for k, v in EVENT.items() if k != "via"}],
            "line 2: decision record: field 'via' is missing",
        ),
        (
            [HEAD, {**EVENT, "type": "note"}],
            "line 2: field 'type' must be one of issued, revoked, decision",
        ),
        ([HEAD, [1, 2]], "line 2: not a JSON object"),
    ],
)
def test_bad_logs_are_one_line(tmp_path: Path, lines: list[object], message: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(ServiceLogError) as err:
        parse_service_log(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_not_json_and_not_text(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(HEAD) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ServiceLogError, match="line 2: not JSON"):
        parse_service_log(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ServiceLogError, match="not UTF-8"):
        parse_service_log(path)
    with pytest.raises(ServiceLogError, match="cannot read"):
        parse_service_log(tmp_path / "missing.jsonl")
