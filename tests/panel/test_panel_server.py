"""The control panel's server without a browser or pcscd: its guards, its controls, its
redaction, and how ``serve --panel`` finds it. The vpcd server is never connected (nothing
listens on its port); exchanges are fed to the panel as the server's observer would."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import cli_serve
from emulator.card import Card
from emulator.vpcd import VpcdEvent, VpcdServer
from harness.panel import PanelServer
from harness.panel.model import SlotPanel
from harness.trace.recorder import dumps
from harness.trace.records import Control
from harness.trace.validate import check_record
from tests.support.cards import fresh_state
from tests.support.secrets import leaked_forms

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_PIN = bytes.fromhex("00A4020C020018")
VERIFY_1111 = bytes.fromhex("002000800431313131")
VERIFY_1234 = bytes.fromhex("002000800431323334")


@pytest.fixture
def panel(tmp_path: Path) -> Iterator[PanelServer]:
    card = Card.create(tmp_path / "card.db", fresh_state())
    server = VpcdServer(card, "127.0.0.1", 9)  # port 9: discard; never connected here
    panel = PanelServer([server], token="t0ken")
    panel.start()
    yield panel
    panel.close()
    card.close()


def _request(
    panel: PanelServer,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{panel.port}{path}", data=data, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as rsp:
            return rsp.status, rsp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post(panel: PanelServer, action: str, **args: Any) -> tuple[int, dict[str, Any]]:
    status, body = _request(
        panel,
        "/api/slots/0/control",
        body={"action": action, **args},
        headers={"X-Panel-Token": panel.token},
    )
    return status, json.loads(body)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize(
    "path", ["/", "/static/panel.js", "/api/state", "/api/events", "/api/slots/0/trace"]
)
def test_every_route_needs_the_token(panel: PanelServer, path: str) -> None:
    assert _request(panel, path)[0] == 403
    assert _request(panel, f"{path}?token=wrong")[0] == 403


def test_the_token_opens_the_page_and_sets_a_cookie(panel: PanelServer) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{panel.port}/?token=t0ken")
    with urllib.request.urlopen(req, timeout=5) as rsp:
        assert rsp.status == 200
        assert "myna_panel_token=t0ken" in rsp.headers["Set-Cookie"]
        assert "HttpOnly" in rsp.headers["Set-Cookie"]
        assert b"panel.js" in rsp.read()
    cookie = {"Cookie": "myna_panel_token=t0ken"}
    assert _request(panel, "/static/panel.css", headers=cookie)[0] == 200


def test_a_post_needs_the_header_not_only_the_cookie(panel: PanelServer) -> None:
    """A cookie is sent by any page the browser shows: it must not be enough to act."""
    status, _ = _request(
        panel,
        "/api/slots/0/control?token=t0ken",
        body={"action": "block"},
        headers={"Cookie": "myna_panel_token=t0ken"},
    )
    assert status == 403


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "attacker.test"])
def test_a_foreign_host_header_is_refused(panel: PanelServer, host: str) -> None:
    """DNS rebinding: a page from another name reaching 127.0.0.1 names itself in Host."""
    status, _ = _request(
        panel, "/api/state?token=t0ken", headers={"Host": host.format(port=panel.port)}
    )
    assert status == 403


def test_localhost_is_accepted(panel: PanelServer) -> None:
    status, _ = _request(
        panel, "/api/state?token=t0ken", headers={"Host": f"localhost:{panel.port}"}
    )
    assert status == 200


def test_controls_change_the_durable_card(panel: PanelServer, tmp_path: Path) -> None:
    assert _post(panel, "set-tries", pin="auth", tries=1) == (
        200,
        {"ok": True, "text": "auth: tries set to 1"},
    )
    assert _post(panel, "block", pin="juki")[0] == 200
    assert _post(panel, "quirk", name="status_9000_after_verify", on=True)[0] == 200
    assert _post(panel, "tear")[0] == 200
    other = Card.open(tmp_path / "card.db")  # another process's view of the same file
    try:
        assert other.pin_record("auth").tries_left == 1
        assert other.pin_record("juki").tries_left == 0
        assert other.state.quirks.status_9000_after_verify is True
    finally:
        other.close()
    assert panel.slots[0].server.card.faults.tear_after_decrement == 1  # type: ignore[attr-defined]
    controls = [r for r in panel.slots[0].trace.records if isinstance(r, Control)]
    assert [r.action for r in controls] == ["set-tries", "block", "quirk", "tear"]
    assert [(r.pin, r.tries) for r in controls[:2]] == [("auth", 1), ("juki", 0)]
    assert all(check_record(r.to_json(), first=False) is None for r in controls)


def test_bad_controls_are_one_line_errors(panel: PanelServer) -> None:
    assert _post(panel, "set-tries", pin="auth", tries=9)[0] == 400
    assert _post(panel, "set-tries", pin="nope", tries=1)[0] == 400
    assert _post(panel, "quirk", name="no_such_quirk", on=True)[0] == 400
    assert _post(panel, "explode")[1] == {"error": "unknown control 'explode'"}


def test_a_re_set_value_goes_nowhere_but_the_card(panel: PanelServer) -> None:
    status, answer = _post(panel, "set-pin", pin="auth", value="4321")
    assert status == 200 and "4321" not in json.dumps(answer)
    status, trace = _request(panel, "/api/slots/0/trace?token=t0ken")
    status, state = _request(panel, "/api/state?token=t0ken")
    for text in (trace, state):
        assert leaked_forms(text.decode(), "4321") == []
    card = panel.slots[0].server.card
    assert card.pin_record("auth").tries_left == 3  # type: ignore[attr-defined]
    assert _post(panel, "set-pin", pin="auth", value="12")[1]["error"].startswith(
        "the JPKI user-authentication PIN must be 4 digits"
    )


def test_a_wrong_verify_gets_its_cause_and_stays_redacted(tmp_path: Path) -> None:
    card = Card(fresh_state())
    card.power_on()
    slot = SlotPanel(0, VpcdServer(card, "127.0.0.1", 35963 + 6))
    assert slot.reader == "Virtual PCD 3 00 00"
    entries = []
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN, VERIFY_1111, VERIFY_1111, VERIFY_1234):
        entries.append(slot.on_event(VpcdEvent("exchange", apdu, card.transmit(apdu), 0.001)))
    wrong, retry, right = entries[2:]
    assert (wrong["sw"], wrong["pin"], wrong["cause"]) == ("63C2", "auth", "wrong value")
    assert retry["cause"] == "app retry"
    assert (right["sw"], right["cause"]) == ("9000", "ok")
    assert slot.last_change["auth"]["text"] == "correct value: tries restored"
    dump = json.dumps(entries) + dumps(slot.trace.records)
    assert "31313131" not in dump and "31323334" not in dump
    assert wrong["hex"] == "00200080 04 <redacted 4 bytes>"


def test_a_read_that_overtakes_our_own_exchange_blames_no_other_process() -> None:
    """The status read can see a counter our own exchange moved before the slot thread's
    event for that exchange reaches the loop: it must not be put down to another process."""
    card = Card(fresh_state())
    card.power_on()
    slot = SlotPanel(0, VpcdServer(card, "127.0.0.1", 9))

    def last(status: dict[str, Any]) -> Any:
        return next(p["last"] for p in status["pins"] if p["name"] == "auth")

    slot.merge(slot.read_status())
    exchanges = [
        (apdu, card.transmit(apdu)) for apdu in (SELECT_JPKI, SELECT_AUTH_PIN, VERIFY_1111)
    ]
    assert last(slot.merge(slot.read_status())) is None  # the read came first
    for apdu, answer in exchanges:
        slot.on_event(VpcdEvent("exchange", apdu, answer, 0.001))
    assert last(slot.merge(slot.read_status()))["cause"] == "wrong value"
    assert slot.merge(slot.read_status()) is not None
    assert slot.last_change["auth"]["cause"] == "wrong value"

    card.set_tries("auth", 3)  # nothing of ours behind this one: seen twice, then blamed
    assert last(slot.merge(slot.read_status()))["cause"] == "wrong value"
    assert last(slot.merge(slot.read_status()))["cause"] == "another process"


def test_a_torn_verify_is_a_power_loss(tmp_path: Path) -> None:
    card = Card(fresh_state())
    slot = SlotPanel(0, VpcdServer(card, "127.0.0.1", 9))
    for apdu in (SELECT_JPKI, SELECT_AUTH_PIN):
        slot.on_event(VpcdEvent("exchange", apdu, b"\x90\x00", 0.001))
    entry = slot.on_event(VpcdEvent("exchange", VERIFY_1234, None, 0.001))
    assert (entry["sw"], entry["cause"]) == ("lost", "power loss")


def test_a_counter_changed_elsewhere_is_attributed_to_another_process(
    panel: PanelServer, tmp_path: Path
) -> None:
    slot = panel.slots[0]
    _wait(lambda: "pins" in panel.snapshot()["slots"][0], "the first status")
    other = Card.open(tmp_path / "card.db")
    try:
        other.set_tries("sign", 2)
    finally:
        other.close()

    def seen() -> bool:
        last = slot.last_change.get("sign")
        return last is not None and last["cause"] == "another process"

    _wait(seen, "the panel to notice the change")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_serve._add_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_knows_the_panel_by_its_entry_point() -> None:
    factory = cli_serve._load_addon("panel")
    assert factory.__module__ == "harness.panel"
    assert _args("--echo", "--panel").panel == 0
    assert _args("--echo", "--panel", "8123").panel == 8123


def test_serve_says_how_to_get_a_missing_add_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_serve.importlib.metadata, "entry_points", lambda **kw: [])
    assert cli_serve.main(["--echo", "--slot", "99", "--panel"]) == cli_serve.EXIT_USAGE
    assert "pip install 'myna-hil[panel]'" in capsys.readouterr().err


def test_panel_host_needs_panel(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_serve.main(["--echo", "--slot", "99", "--panel-host", "0.0.0.0"]) == 2
    assert "--panel-host needs --panel" in capsys.readouterr().err
