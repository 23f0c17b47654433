"""The re-select quirk (docs/card.md#quirks): re-selecting the application already selected
clears its verified PINs by default; with ``reselect_keeps_verification`` it keeps them."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator import cli
from emulator.card import Card
from emulator.commands import issuer_cryptogram
from emulator.personalise import new_state
from emulator.state import CardState, Quirks
from harness.controls import InProcessCard
from tests.conftest import Link
from tests.emulator.apdus import COMMON, JPKI, JUKI, OK, TEXT, select_app, select_ef, verify
from tests.support.cards import template_pki

MakeLink = Callable[..., Link]
SIGN = "802A009720" + "AB" * 32 + "00"  # P1 00: 32 bytes padded as given, auth key
READ_SIGN_CERT = "00B0810004"  # EF 0001 by SFI: needs the signing password


def _quirk_link(make_link: MakeLink, on: bool) -> Link:
    return make_link(quirks=Quirks(reselect_keeps_verification=on))


@pytest.mark.parametrize("on", [False, True], ids=["default", "quirk"])
def test_reselect_same_application(make_link: MakeLink, on: bool) -> None:
    link = _quirk_link(make_link, on)
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw(verify("ABC123", 0x9B)) == OK
    assert link.sw(select_app(JPKI)) == OK  # the same application again
    assert link.sw("00B0000004") == 0x6986  # the current EF is cleared either way
    expected = OK if on else 0x6982
    assert link.sw(SIGN) == expected
    assert link.sw(READ_SIGN_CERT) == expected


@pytest.mark.parametrize("on", [False, True], ids=["default", "quirk"])
def test_selecting_another_application_still_clears(make_link: MakeLink, on: bool) -> None:
    link = _quirk_link(make_link, on)
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(SIGN) == 0x6982
    # Juki and the common AP share one PIN [model], but are two applications
    assert link.sw(select_app(JUKI)) == OK
    assert link.sw(verify("3456", 0x9C)) == OK
    assert link.sw(select_app(COMMON)) == OK
    assert link.sw("8032009C04" + b"4321".hex()) == 0x6982


@pytest.mark.parametrize("on", [False, True], ids=["default", "quirk"])
def test_text_ap_reselect(make_link: MakeLink, on: bool) -> None:
    link = _quirk_link(make_link, on)
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw(verify("2345", 0x91)) == OK
    assert link.sw(select_app(TEXT)) == OK
    assert link.sw("00B0810011") == (OK if on else 0x6982)
    # an empty VERIFY is a status query either way (no 9000 without the status quirk)
    assert link.sw(verify(b"", 0x91)) == 0x63C3


def test_quirk_keeps_pins_only_not_issuer_authentication(make_link: MakeLink) -> None:
    """[model] The quirk is about PIN verification: issuer authentication and the challenge
    end with any SELECT of an application."""
    link = _quirk_link(make_link, True)
    assert link.sw(select_app(JPKI)) == OK
    challenge = link.send("0084000008")[:-2]
    assert link.sw(f"0082000010{issuer_cryptogram(challenge).hex()}") == OK
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw("002C0398") == 0x6982


@pytest.mark.parametrize("on", [False, True], ids=["default", "quirk"])
def test_reset_clears_whatever_the_quirk(make_link: MakeLink, on: bool) -> None:
    link = _quirk_link(make_link, on)
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(verify("1234", 0x98)) == OK
    link.card.reset()
    assert link.sw(select_app(JPKI)) == OK
    assert link.sw(SIGN) == 0x6982


def test_set_quirks_at_run_time(card: Card) -> None:
    card.power_on()
    card.set_quirks(reselect_keeps_verification=True)
    card.power_on()
    for cmd in (select_app(JPKI), verify("1234", 0x98), select_app(JPKI), select_ef(0x0017)):
        assert card.transmit(bytes.fromhex(cmd)) == b"\x90\x00"
    assert card.transmit(bytes.fromhex(SIGN))[-2:] == b"\x90\x00"
    assert card.state.quirks == Quirks(reselect_keeps_verification=True)


def test_quirk_in_the_state_file() -> None:
    state = new_state(pki=template_pki(), quirks=Quirks(reselect_keeps_verification=True))
    doc = state.to_json()
    assert doc["quirks"] == {"status_9000_after_verify": False, "reselect_keeps_verification": True}
    assert CardState.from_json(doc).quirks.reselect_keeps_verification
    # a state written before the quirk existed loads with it off
    doc["quirks"] = {"status_9000_after_verify": False}
    assert CardState.from_json(doc).quirks == Quirks()


@pytest.fixture
def _reuse_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "new_state", functools.partial(new_state, pki=template_pki()))


@pytest.mark.usefixtures("_reuse_keys")
@pytest.mark.parametrize("flag", [False, True])
def test_init_option(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: bool) -> None:
    path = tmp_path / "card.db"
    extra = ["--quirk-reselect-keeps-verification"] if flag else []
    assert cli.main(["init", "--state", str(path), *extra]) == 0
    capsys.readouterr()
    assert cli.main(["show", "--state", str(path), "--json"]) == 0
    quirks = json.loads(capsys.readouterr().out)["quirks"]
    assert quirks == {"status_9000_after_verify": False, "reselect_keeps_verification": flag}
    capsys.readouterr()
    apdus = [select_app(JPKI), verify("1234", 0x98), select_app(JPKI), SIGN]
    assert cli.main(["apdu", "--state", str(path), *apdus]) == 0
    last = capsys.readouterr().out.split()[-1]
    assert last[-4:] == ("9000" if flag else "6982")


# --- the pytest plugin's marker -----------------------------------------------------------


def _sign_after_reselect(card: InProcessCard) -> bytes:
    t = card.transport
    for cmd in (select_app(JPKI), verify("1234", 0x98), select_app(JPKI)):
        assert t.transmit(bytes.fromhex(cmd)) == b"\x90\x00"
    return t.transmit(bytes.fromhex(SIGN))[-2:]


@pytest.mark.myna_card(quirks={"reselect_keeps_verification": True})
def test_plugin_marker_turns_the_quirk_on(myna_card: InProcessCard) -> None:
    assert myna_card.card.state.quirks.reselect_keeps_verification
    assert _sign_after_reselect(myna_card) == b"\x90\x00"


def test_plugin_default_clears(myna_card: InProcessCard) -> None:
    assert _sign_after_reselect(myna_card) == b"\x69\x82"


def test_plugin_control_sets_the_quirk(myna_card: InProcessCard) -> None:
    myna_card.set_quirks(reselect_keeps_verification=True)
    assert _sign_after_reselect(myna_card) == b"\x90\x00"
