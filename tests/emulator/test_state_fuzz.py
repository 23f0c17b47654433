"""Mutated card states (JSON to import, card databases to open) get one-line errors, never a
traceback: the CLI exits 0 with a usable card or 2 with one line naming what is wrong."""

from __future__ import annotations

import contextlib
import copy
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import cli
from emulator.card import Card
from tests.emulator.test_cli import _reuse_keys  # noqa: F401 - autouse: no RSA key generation
from tests.support.cards import fresh_state

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["١٢٣", "AAAA", "", "standard", "contact"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    return found


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return fresh_state().to_json()


def _one_line_or_ok(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    assert err.count("\n") == (0 if code == 0 else 1), err


@SETTINGS
@given(data=st.data())
def test_mutated_json_imports_or_is_one_line(
    document: dict[str, Any], data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(json_value)
        else:
            del parent[path[-1]]
    raw = json.dumps(doc).encode()
    if data.draw(st.booleans()):  # and sometimes damage the bytes as well
        cut = data.draw(st.integers(0, len(raw)))
        raw = raw[:cut] + data.draw(st.binary(max_size=8)) + raw[cut + 1 :]
    with tempfile.TemporaryDirectory() as work:
        source, target = Path(work) / "in.json", Path(work) / "card.db"
        source.write_bytes(raw)
        capsys.readouterr()
        code = cli.main(["import", str(source), "--state", str(target)])
        _one_line_or_ok(code, capsys.readouterr().err)
        if code == 0:
            card = Card.open(target)
            card.power_on()
            assert card.transmit(bytes.fromhex("00200098"))[-2:] != b"\x6f\x00"
            card.close()


COLUMNS = {
    "card": ["format", "generation", "profile", "atr_form", "quirks", "holder"],
    "pin": ["name", "salt", "digest", "iterations", "max_tries", "tries_left"],
    "pki": ["name", "der"],
}
sql_value = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=40)
    | st.sampled_from(["{}", "[]", '{"name": 1}', "face-auth", "contactless"])
)


@SETTINGS
@given(data=st.data())
def test_mutated_database_opens_or_is_one_line(
    data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "card.db"
        assert cli.main(["init", "--state", str(path)]) == 0
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for _ in range(data.draw(st.integers(1, 3))):
            table = data.draw(st.sampled_from(sorted(COLUMNS)))
            column = data.draw(st.sampled_from(COLUMNS[table]))
            if table == "card":
                sql = f"UPDATE card SET {column} = ?"
                args: tuple[Any, ...] = (data.draw(sql_value),)
            else:
                sql = (
                    f"UPDATE {table} SET {column} = ? WHERE name ="
                    f" (SELECT name FROM {table} ORDER BY name LIMIT 1 OFFSET ?)"
                )
                args = (data.draw(sql_value), data.draw(st.integers(0, 5)))
            # NOT NULL / primary key violations: the database itself refuses them
            with contextlib.suppress(sqlite3.IntegrityError):
                conn.execute(sql, args)
        conn.commit()
        conn.close()
        capsys.readouterr()
        for command in (
            ["show", "--state", str(path)],
            [
                "apdu",
                "--state",
                str(path),
                "00A4040C0AD392F000260100000001",
                "0020009804" + b"0000".hex(),
            ],
        ):
            code = cli.main(command)
            _one_line_or_ok(code, capsys.readouterr().err)
