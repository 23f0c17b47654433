"""Property tests: build∘parse identity, and every fast path agrees with the construct grammar.

The construct grammar is the reference (docs/README.md#conventions): the
hand-written ``CommandApdu.from_bytes`` / ``to_bytes`` and the compiled grammars must give
the same answer on generated valid APDUs and on arbitrary byte strings.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.grammar import (
    ApduFormatError,
    CommandApdu,
    ResponseApdu,
    build_command,
    build_response,
    parse_command,
    parse_response,
)
from emulator.grammar.apdu import CASES, COMMAND_APDU, RESPONSE_APDU

byte = st.integers(0, 0xFF)


@st.composite
def command_apdus(draw: st.DrawFn) -> CommandApdu:
    """Any well-formed command APDU object, short or extended, of every case."""
    extended = draw(st.booleans())
    max_lc, max_le = (600, 0x10000) if extended else (0xFF, 0x100)
    data = draw(st.binary(max_size=max_lc))
    le = draw(st.none() | st.integers(1, max_le) | st.sampled_from([max_le, 1]))
    if extended and not data and le is None:
        le = draw(st.integers(1, max_le))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


@st.composite
def near_apdus(draw: st.DrawFn) -> bytes:
    """Valid encodings, then perhaps truncated, extended or with a length byte changed."""
    raw = bytearray(CommandApdu.to_bytes(draw(command_apdus())))
    how = draw(st.sampled_from(["keep", "cut", "add", "poke"]))
    if how == "cut":
        del raw[draw(st.integers(0, len(raw) - 1)) :]
    elif how == "add":
        raw += draw(st.binary(min_size=1, max_size=3))
    elif how == "poke" and len(raw) > 4:
        raw[draw(st.integers(4, min(6, len(raw) - 1)))] = draw(byte)
    return bytes(raw)


any_bytes = st.binary(max_size=20) | near_apdus()


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except ApduFormatError:
        return ("rejected", None)


@given(command_apdus())
def test_fast_build_then_parse_is_identity(apdu: CommandApdu) -> None:
    assert CommandApdu.from_bytes(apdu.to_bytes()) == apdu


@given(command_apdus())
def test_construct_build_then_parse_is_identity(apdu: CommandApdu) -> None:
    assert parse_command(build_command(apdu)) == apdu


@given(command_apdus())
def test_fast_and_construct_build_the_same_bytes(apdu: CommandApdu) -> None:
    assert apdu.to_bytes() == build_command(apdu)


@given(any_bytes)
def test_fast_and_construct_parse_agree(raw: bytes) -> None:
    fast = _outcome(CommandApdu.from_bytes, raw)
    assert fast == _outcome(parse_command, raw)
    if fast[0] == "ok":  # parse then build is the identity on accepted strings
        assert fast[1].to_bytes() == raw


@given(
    st.builds(
        CommandApdu,
        st.integers(-1, 0x100),
        byte,
        byte,
        st.integers(-1, 0x100),
        st.binary(max_size=300),
        st.none() | st.integers(-1, 0x10001),
        st.booleans(),
    )
)
def test_fast_and_construct_refuse_the_same_objects(apdu: CommandApdu) -> None:
    assert _outcome(CommandApdu.to_bytes, apdu) == _outcome(build_command, apdu)


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_response_round_trip(data: bytes, sw: int) -> None:
    resp = ResponseApdu(data, sw)
    raw = resp.to_bytes()
    assert raw == build_response(resp)
    assert ResponseApdu.from_bytes(raw) == parse_response(raw) == resp


@given(st.binary(min_size=2, max_size=300))
def test_response_parse_paths_agree(raw: bytes) -> None:
    assert ResponseApdu.from_bytes(raw) == parse_response(raw)
    assert ResponseApdu.from_bytes(raw).to_bytes() == raw


# --- compiled == interpreted (as construct's own tests check) -------------------------------

GRAMMARS = {f"case{c.name[1:]}": g for c, g in CASES.items()}
GRAMMARS["command"] = COMMAND_APDU
GRAMMARS["response"] = RESPONSE_APDU
COMPILED = {name: g.compile() for name, g in GRAMMARS.items()}


def _parsed(grammar: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return ("ok", grammar.parse(raw))
    except Exception:  # construct's error types differ between the two paths
        return ("rejected", None)


#: construct 2.10's compiled ``Bytes`` is ``io.read(n)`` with no short-read check, so the
#: compiled case-3 grammars (data last, then ``Terminated``) accept a truncated data field.
#: Harmless here -- the card parses with the hand-written fast path -- but it is why the
#: compiled grammars must never become a fast path without this test.
SHORT_READ_BLIND = {"case3S", "case3E"}


@pytest.mark.parametrize("name", GRAMMARS)
@given(raw=any_bytes)
def test_compiled_grammar_parses_like_interpreted(name: str, raw: bytes) -> None:
    reference = _parsed(GRAMMARS[name], raw)
    if name in SHORT_READ_BLIND and reference[0] == "rejected":
        return  # see SHORT_READ_BLIND; accepted strings must still agree exactly
    assert _parsed(COMPILED[name], raw) == reference


@pytest.mark.xfail(strict=True, reason="construct 2.10 compiled Bytes ignores short reads")
@pytest.mark.parametrize("name", sorted(SHORT_READ_BLIND))
def test_compiled_case3_rejects_truncated_data(name: str) -> None:
    raw = bytes.fromhex("00200080" + ("0231" if name == "case3S" else "00000231"))
    assert _parsed(GRAMMARS[name], raw)[0] == "rejected"
    assert _parsed(COMPILED[name], raw)[0] == "rejected"


@pytest.mark.parametrize("name", [n for n in GRAMMARS if n.startswith("case")])
@given(apdu=command_apdus())
def test_compiled_grammar_builds_like_interpreted(name: str, apdu: CommandApdu) -> None:
    raw = apdu.to_bytes()
    parsed = _parsed(GRAMMARS[name], raw)
    if parsed[0] == "ok":
        assert COMPILED[name].build(parsed[1]) == GRAMMARS[name].build(parsed[1]) == raw


def test_compiled_grammars_accept_something() -> None:
    """Guard against a vacuous comparison: each compiled case grammar parses its own vector."""
    vectors = {
        "case1": "00A4040C",
        "case2S": "00B0000000",
        "case3S": "00A4020C020018",
        "case4S": "802A0080010100",
        "case2E": "00B00000000000",
        "case3E": "0020008000000131",
        "case4E": "802A0080000001010000",
    }
    for name, hexstr in vectors.items():
        assert _parsed(COMPILED[name], bytes.fromhex(hexstr))[0] == "ok", name
