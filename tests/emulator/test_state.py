"""Durable card state: JSON round trip, atomic writes, and refusal of unusable files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from emulator.card import Card
from emulator.state import STATE_VERSION, CardState, FileStore, StateError
from tests.support.cards import fresh_state

SECRET_PINS = {"auth": "8642", "sign": "QZXW7319PLMK", "juki": "9753", "helper": "1357"}


@pytest.mark.parametrize("profile", ["standard", "face-auth"])
def test_json_round_trip(profile: str) -> None:
    state = fresh_state(profile=profile)
    state.pins[next(iter(state.pins))].tries_left = 1
    assert CardState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_file_round_trip_and_counters_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = Card.create(path, fresh_state())
    card.power_on()
    card.transmit(bytes.fromhex("00A4040C0AD392F000260100000001"))
    assert card.transmit(bytes.fromhex("002000980439393939")) == b"\x63\xc2"
    again = Card.open(path)
    assert again.state == card.state
    assert again.state.pins["auth"].tries_left == 2


def test_commit_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    store = FileStore(path)
    state = fresh_state()
    store.commit(state)
    store.commit(state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
    assert store.writes == 2


def test_failed_write_keeps_the_previous_state(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "card.json"
    store = FileStore(path)
    state = fresh_state()
    store.commit(state)
    before = path.read_bytes()
    state.pins["auth"].tries_left = 0

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        store.commit(state)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
    assert FileStore(path).load().pins["auth"].tries_left == 3


def test_missing_file_is_an_error_not_a_fresh_card(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
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
    "empty": (b"", "corrupt"),
    "not-json": (b"{\"format\": ", "corrupt"),
    "binary": (b"\xff\xfe\x00\x81garbage", "corrupt"),
    "json-list": (b"[]", "not a myna-hil card state"),
    "other-format": (_with("format", "something-else"), "not a myna-hil card state"),
    "no-version": (_with("version", None), "version"),
    "newer-version": (_with("version", STATE_VERSION + 1), "newer"),
    "no-pins": (_with("pins", None), "malformed"),
    "pins-list": (_with("pins", []), "malformed"),
    "pin-not-object": (_with("pins", {"juki": "x"}), "malformed"),
    "bad-base64": (_pin_with("salt", "***"), "malformed"),
    "string-counter": (_pin_with("tries_left", "3"), "counter"),
    "counter-above-max": (_pin_with("tries_left", 9), "counter"),
    "unknown-profile": (_with("profile", "gold"), "profile"),
    "unknown-atr": (_with("atr_form", "nfc-f"), "ATR"),
    "holder-not-text": (_with("holder", {**_doc()["holder"], "name": 5}), "holder"),
    "unknown-quirk": (_with("quirks", {"lucky": True}), "malformed"),
}


@pytest.mark.parametrize(("raw", "message"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_unusable_file_is_a_clear_state_error(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(raw)
    with pytest.raises(StateError, match=message) as exc:
        Card.open(path)
    assert str(path) in str(exc.value)
    assert path.read_bytes() == raw, "a refused file is never overwritten"


def test_standard_card_without_signing_key_is_refused(tmp_path: Path) -> None:
    doc = _doc()
    doc["pki"]["sign_key"] = None
    path = tmp_path / "card.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(StateError, match="signing key"):
        Card.open(path)


def test_no_pin_value_in_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    Card.create(path, fresh_state(pin_overrides=SECRET_PINS))
    text = path.read_text()
    assert SECRET_PINS["sign"] not in text
    doc = json.loads(text)
    for name, record in doc["pins"].items():
        assert set(record) == {"salt", "digest", "iterations", "tries_left", "max_tries"}
        assert SECRET_PINS[name] not in record.values()
    # and no field anywhere holds a value verbatim
    strings = [v for v in _walk(doc) if isinstance(v, str)]
    assert not set(SECRET_PINS.values()) & set(strings)


def _walk(obj: Any) -> Any:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
    else:
        yield obj
