"""Holder data as cards write it (docs/card.md#text-ap-files): U+3000 between family and given
name, full-width digits in the address, reproducible by seed, round-tripped by the text AP."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator import cli
from emulator.grammar import parse_tlvs
from emulator.identity import generate_holder, is_valid_my_number
from emulator.personalise import new_state
from emulator.state import Holder
from tests.conftest import Link
from tests.emulator.apdus import OK, TEXT, open_ef, read_all, verify
from tests.support.cards import template_pki

MakeLink = Callable[..., Link]
IDEOGRAPHIC_SPACE = "\u3000"
FULL_WIDTH_DIGIT = re.compile("[\uff10-\uff19]")


@pytest.mark.parametrize("seed", range(40))
def test_generated_holder_is_written_as_cards_write_it(seed: int) -> None:
    h = generate_holder(seed=seed)
    family, given = h.name.split(IDEOGRAPHIC_SPACE)
    assert family and given and " " not in h.name
    assert FULL_WIDTH_DIGIT.search(h.address)
    assert not re.search("[0-9 ]", h.address), "no ASCII digits or spaces in an address"
    assert len(h.birth_date) == 8 and h.birth_date.isdigit()
    assert h.sex in ("1", "2")
    assert is_valid_my_number(h.my_number)
    assert len(h.name.encode()) < 0x80 and len(h.address.encode()) < 0x80


def test_seed_reproduces_the_holder() -> None:
    assert generate_holder(seed=7) == generate_holder(seed=7)
    assert len({generate_holder(seed=n).address for n in range(20)}) > 5
    state = new_state(holder_seed=7, pki=template_pki())
    assert state.holder == generate_holder(seed=7)


def _basic_four(link: Link) -> dict[int, bytes]:
    open_ef(link, TEXT, 0x0002)
    assert link.sw(verify("2345", 0x91)) == OK
    (outer,) = parse_tlvs(read_all(link))
    assert outer.tag == 0xFF20
    return {t.tag: t.value for t in parse_tlvs(outer.value)}


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_generated_holder_round_trips_through_the_text_ap(make_link: MakeLink, seed: int) -> None:
    holder = generate_holder(seed=seed)
    link = make_link(holder=holder)
    tlvs = _basic_four(link)
    assert tlvs[0xDF22].decode("utf-8") == holder.name
    assert tlvs[0xDF23].decode("utf-8") == holder.address
    assert "\u3000".encode() in tlvs[0xDF22]  # E3 80 80
    assert tlvs[0xDF24] == holder.birth_date.encode() and tlvs[0xDF25] == holder.sex.encode()


def test_explicit_holder_round_trips(make_link: MakeLink) -> None:
    holder = Holder(
        name="試験\u3000花子",
        address="東京都千代田区見本町１\u2212１",
        birth_date="19900401",
        sex="2",
        my_number="123456789018",
    )
    link = make_link(holder=holder)
    tlvs = _basic_four(link)
    assert tlvs[0xDF22] == "試験　花子".encode()
    assert tlvs[0xDF22].count(b"\xe3\x80\x80") == 1
    assert tlvs[0xDF23] == "東京都千代田区見本町１−１".encode()
    assert b"\xef\xbc\x91" in tlvs[0xDF23]  # U+FF11 FULLWIDTH DIGIT ONE
    assert b"\xe2\x88\x92" in tlvs[0xDF23]  # U+2212 MINUS SIGN


def test_long_holder_uses_ber_long_lengths(make_link: MakeLink) -> None:
    """A name and address long enough for 81 xx lengths still parse, offsets still point."""
    holder = Holder(
        name="見本" * 30 + "\u3000" + "花子",
        address="見本町" * 20 + "１２３",
        birth_date="19900401",
        sex="2",
        my_number="123456789018",
    )
    link = make_link(holder=holder)
    tlvs = _basic_four(link)
    assert tlvs[0xDF22].decode() == holder.name and tlvs[0xDF23].decode() == holder.address


# --- myna-emu init ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reuse_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "new_state", functools.partial(new_state, pki=template_pki()))


def _holder_of(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert cli.main(["export", "--state", str(path)]) == 0
    holder: dict[str, str] = json.loads(capsys.readouterr().out)["holder"]
    return holder


def test_init_holder_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    assert cli.main(["init", "--state", str(a), "--holder-seed", "42"]) == 0
    assert cli.main(["init", "--state", str(b), "--holder-seed", "42"]) == 0
    assert cli.main(["init", "--state", str(c), "--holder-seed", "43"]) == 0
    assert _holder_of(a, capsys) == _holder_of(b, capsys) == vars(generate_holder(seed=42))
    assert _holder_of(c, capsys) != _holder_of(a, capsys)


def test_init_holder_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "card.db"
    argv = [
        "init",
        "--state",
        str(path),
        "--holder-seed",
        "5",
        "--holder",
        "試験\u3000太郎,東京都千代田区見本町１−１,19800229,1",
    ]
    assert cli.main(argv) == 0
    holder = _holder_of(path, capsys)
    assert holder["name"] == "試験　太郎" and holder["address"] == "東京都千代田区見本町１−１"
    assert (holder["birth_date"], holder["sex"]) == ("19800229", "1")
    assert holder["my_number"] == generate_holder(seed=5).my_number
    short = tmp_path / "short.db"
    assert (
        cli.main(
            [
                "init",
                "--state",
                str(short),
                "--holder-seed",
                "5",
                "--holder",
                "試験\u3000次郎,見本町１",
            ]
        )
        == 0
    )
    holder = _holder_of(short, capsys)
    assert holder["birth_date"] == generate_holder(seed=5).birth_date


@pytest.mark.parametrize(
    "value",
    ["only-a-name", ",address", "n,a,1980-01-01", "n,a,19800101,3", "n,a,19800230", "a,b,c,d,e"],
)
def test_init_holder_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["init", "--state", str(tmp_path / "x.db"), "--holder", value])
    assert exc.value.code == 2
    assert not (tmp_path / "x.db").exists()
