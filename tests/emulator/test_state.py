"""Card state as data: the JSON form (export / import) and refusal of unusable documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from emulator.card import Card
from emulator.state import STATE_VERSION, CardState, StateError, dump_json, load_json
from tests.support.cards import fresh_state

SECRET_PINS = {"auth": "8642", "sign": "QZXW7319PLMK", "juki": "9753", "helper": "1357"}
OTHER_PINS = {"auth": "2468", "sign": "MKPL9137WXZQ", "juki": "3579", "helper": "7531"}


@pytest.mark.parametrize("profile", ["standard", "face-auth"])
def test_json_round_trip(profile: str) -> None:
    state = fresh_state(profile=profile)
    state.pins[next(iter(state.pins))].tries_left = 1
    assert CardState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_missing_file_is_an_error_not_a_fresh_card(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(StateError, match="myna-emu init") as exc:
        Card.open(path)
    assert str(path) in str(exc.value)
    assert not path.exists()


def _doc() -> dict[str, Any]:
    return fresh_state().to_json()


def _with(key: str, value: Any) -> bytes:
    return json.dumps({**_doc(), key: value}).encode()


def _pin_with(field: str, value: Any) -> bytes:
    doc = _doc()
    doc["pins"]["juki"][field] = value
    return json.dumps(doc).encode()


UNUSABLE = {
    "empty": (b"", "not JSON"),
    "not-json": (b'{"format": ', "not JSON"),
    "binary": (b"\xff\xfe\x00\x81garbage", "not UTF-8"),
    "deep": (b"[" * 100_000, "nested too deeply|not a myna-hil"),
    "json-list": (b"[]", "not a myna-hil card state"),
    "other-format": (_with("format", "something-else"), "not a myna-hil card state"),
    "no-version": (_with("version", None), "version"),
    "newer-version": (_with("version", STATE_VERSION + 1), "newer"),
    "version-zero": (_with("version", 0), "version"),
    "version-bool": (_with("version", True), "version"),
    "no-pins": (_with("pins", None), "'pins'"),
    "pins-list": (_with("pins", []), "'pins'"),
    "pin-not-object": (_with("pins", {"juki": "x"}), "'pins.juki'"),
    "bad-base64": (_pin_with("salt", "***"), "'pins.juki.salt'"),
    "short-digest": (_pin_with("digest", "AAAA"), "'digest'"),
    "string-counter": (_pin_with("tries_left", "3"), "integers"),
    "counter-above-max": (_pin_with("tries_left", 9), "'tries_left'"),
    "iterations-zero": (_pin_with("iterations", 0), "'iterations'"),
    "iterations-huge": (_pin_with("iterations", 10**12), "'iterations'"),
    "unknown-profile": (_with("profile", "gold"), "'profile'"),
    "unknown-atr": (_with("atr_form", "nfc-f"), "'atr_form'"),
    "holder-not-text": (_with("holder", {**_doc()["holder"], "name": 5}), "holder"),
    "holder-missing": (_with("holder", {"name": "x"}), "'holder'"),
    "unknown-quirk": (_with("quirks", {"lucky": True}), "'quirks'"),
    "quirk-not-bool": (_with("quirks", {"status_9000_after_verify": "yes"}), "quirks"),
    "bad-der": (_with("pki", {**_doc()["pki"], "auth_key": "AAEC"}), "pki.auth_key"),
    "bad-cert": (_with("pki", {**_doc()["pki"], "sign_cert": "AAEC"}), "pki.sign_cert"),
}


@pytest.mark.parametrize(("raw", "message"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_unusable_json_is_a_clear_state_error(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(raw)
    with pytest.raises(StateError, match=message) as exc:
        load_json(path)
    assert str(path) in str(exc.value)
    assert "\n" not in str(exc.value)
    assert path.read_bytes() == raw, "a refused file is never overwritten"


def test_standard_card_without_signing_key_is_refused(tmp_path: Path) -> None:
    doc = _doc()
    doc["pki"]["sign_key"] = None
    path = tmp_path / "card.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(StateError, match="signing key"):
        load_json(path)


def test_json_card_given_as_database_says_how_to_import(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(json.dumps(_doc()))
    with pytest.raises(StateError, match="myna-emu import"):
        Card.open(path)


def test_export_import_round_trip(tmp_path: Path) -> None:
    card = Card.create(tmp_path / "a.db", fresh_state())
    card.set_tries("sign", 2)
    exported = tmp_path / "a.json"
    exported.write_text(dump_json(card.state))
    again = Card.create(tmp_path / "b.db", load_json(exported))
    assert again.state == card.state


def test_no_pin_value_in_the_exported_state(tmp_path: Path) -> None:
    state = fresh_state(pin_overrides=SECRET_PINS)
    # The same card with other PIN values: the holder's random digits (the 12-digit number,
    # the 4-digit security code) and the certificates' ASCII dates can hold a 4-digit PIN by
    # chance, so a value may appear as often as it does there, and not once more.
    control = copy.deepcopy(state)
    control.pins = fresh_state(pin_overrides=OTHER_PINS).pins
    card = Card.create(tmp_path / "card.db", state)
    Card.create(tmp_path / "control.db", control)
    text = dump_json(card.state)
    raw = (tmp_path / "card.db").read_bytes()
    raw_control = (tmp_path / "control.db").read_bytes()
    for value in SECRET_PINS.values():
        assert raw.count(value.encode()) == raw_control.count(value.encode())
    assert SECRET_PINS["sign"].encode() not in raw
    assert SECRET_PINS["sign"] not in text
    doc = json.loads(text)
    for name, record in doc["pins"].items():
        assert set(record) == {"salt", "digest", "iterations", "tries_left", "max_tries"}
        assert SECRET_PINS.get(name) not in record.values()
    # and no field anywhere holds a value verbatim more often than on the control card
    strings = [v for v in _walk(doc) if isinstance(v, str)]
    control_strings = [v for v in _walk(json.loads(dump_json(control))) if isinstance(v, str)]
    for value in SECRET_PINS.values():
        assert strings.count(value) == control_strings.count(value)


def _walk(obj: Any) -> Any:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
    else:
        yield obj
