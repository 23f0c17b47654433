"""``myna-emu init / show / apdu`` run in-process, plus one run of the installed script."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import cli
from emulator.personalise import new_state
from emulator.state import FileStore
from tests.support.cards import template_pki

SELECT_JPKI = "00A4040C0AD392F000260100000001"
SECRETS = ["auth=8642", "sign=QZXW7319PLMK", "juki=9753", "helper=1357"]


@pytest.fixture(autouse=True)
def _reuse_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip RSA key generation in-process; the subprocess test below does the real thing."""
    monkeypatch.setattr(cli, "new_state", functools.partial(new_state, pki=template_pki()))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "card.json"
    assert cli.main(["init", "--state", str(path)]) == 0
    return path


def _show(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert cli.main(["show", "--state", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _apdu(path: Path, capsys: pytest.CaptureFixture[str], *apdus: str) -> list[str]:
    capsys.readouterr()
    assert cli.main(["apdu", "--state", str(path), *apdus]) == 0
    return capsys.readouterr().out.split()


def test_init_defaults(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = _show(state, capsys)
    assert shown["profile"] == "standard" and shown["atr_form"] == "contact"
    tries = {p["pin"]: (p["tries_left"], p["max_tries"], p["blocked"]) for p in shown["pins"]}
    assert tries == {"auth": (3, 3, False), "sign": (5, 5, False), "juki": (3, 3, False),
                     "helper": (3, 3, False)}
    # the documented default values verify
    out = _apdu(state, capsys, SELECT_JPKI, "002000980431323334",
                "0020009B06" + b"ABC123".hex(), "00A4040C0AD3921000310001010401",
                "0020009C04" + b"3456".hex(), "00A4040C0AD3921000310001010408",
                "0020009104" + b"2345".hex())
    assert out == ["9000"] * 7


def test_init_refuses_to_overwrite(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = state.read_bytes()
    assert cli.main(["init", "--state", str(state)]) == 2
    assert "--force" in capsys.readouterr().err
    assert state.read_bytes() == before
    assert cli.main(["init", "--state", str(state), "--force", "--profile", "face-auth"]) == 0
    assert FileStore(state).load().profile == "face-auth"


@pytest.mark.parametrize(
    ("pin", "rule"),
    [("auth=12a4", "4 digits"), ("auth=123", "4 digits"), ("sign=abc123", "A-Z and 0-9"),
     ("sign=ABC12", "6-16"), ("juki=34567", "4 digits"), ("helper=", "4 digits")],
)
def test_invalid_pin_is_refused_with_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pin: str, rule: str
) -> None:
    path = tmp_path / "card.json"
    assert cli.main(["init", "--state", str(path), "--pin", pin]) == 2
    err = capsys.readouterr().err
    assert rule in err and err.count("\n") == 1
    value = pin.split("=")[1]
    assert not value or value not in err, "a refused value is not echoed"
    assert not path.exists()


def test_unknown_pin_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["init", "--state", str(tmp_path / "c.json"), "--pin", "puk=1234"])
    assert exc.value.code == 2


def test_face_auth_card_takes_no_jpki_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "card.json"
    assert cli.main(["init", "--state", str(path), "--profile", "face-auth",
                     "--pin", "auth=1111"]) == 2
    assert "face" in capsys.readouterr().err
    assert cli.main(["init", "--state", str(path), "--profile", "face-auth"]) == 0
    pins = {p["pin"]: p["present"] for p in _show(path, capsys)["pins"]}
    assert pins == {"auth": False, "sign": False, "juki": True, "helper": True}


def test_show_never_prints_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "card.json"
    args = ["init", "--state", str(path)]
    for s in SECRETS:
        args += ["--pin", s]
    assert cli.main(args) == 0
    init_out = capsys.readouterr().out
    assert cli.main(["show", "--state", str(path)]) == 0
    table = capsys.readouterr().out
    assert cli.main(["show", "--state", str(path), "--json"]) == 0
    as_json = capsys.readouterr().out
    assert "auth" in table and "5 / 5" in table.replace("  ", " ")
    for output in (init_out, table, as_json):
        for secret in SECRETS:
            assert secret.split("=")[1] not in output


def test_apdu_from_args_saves_the_state(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _apdu(state, capsys, SELECT_JPKI, "00 20 00 98 04 39 39 39 39", "00200098")
    assert out == ["9000", "63C2", "63C2"]
    auth = next(p for p in _show(state, capsys)["pins"] if p["pin"] == "auth")
    assert auth["tries_left"] == 2


def test_apdu_prints_data_and_sw(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _apdu(state, capsys, SELECT_JPKI, "00A4020C02000A", "00B0000004")
    assert out[2].startswith("3082") and out[2].endswith("9000") and len(out[2]) == 12


def test_apdu_from_stdin(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = f"{SELECT_JPKI}\n\n# a comment\n  00 20 00 9B  \n00CA5F5100\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    out = _apdu(state, capsys)
    assert out[:2] == ["9000", "63C5"]
    assert out[2].startswith("DA13FF") and out[2].endswith("9000")


@pytest.mark.parametrize("bad", ["00A4zz", "00A", "hello world"])
def test_non_hex_is_exit_2_one_line(
    state: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    capsys.readouterr()
    assert cli.main(["apdu", "--state", str(state), SELECT_JPKI, bad]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # arguments are checked before the card is touched
    assert captured.err.count("\n") == 1 and "hex" in captured.err


def test_missing_state_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("show", "apdu"):
        assert cli.main([cmd, "--state", str(tmp_path / "nope.json")]) == 2
        err = capsys.readouterr().err
        assert "myna-emu init" in err and err.count("\n") == 1
    assert not (tmp_path / "nope.json").exists()


def test_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("myna-emu")
    if not script.exists():
        pytest.skip("myna-emu is not installed next to this interpreter")
    path = tmp_path / "card.json"

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], input=stdin, capture_output=True,
                              text=True, timeout=120, check=False)

    assert run("init", "--state", str(path)).returncode == 0
    r = run("apdu", "--state", str(path), stdin=f"{SELECT_JPKI}\n0020009804{b'0000'.hex()}\n")
    assert (r.returncode, r.stdout.split()) == (0, ["9000", "63C2"])
    r = run("show", "--state", str(path))
    assert r.returncode == 0 and "auth" in r.stdout and "1234" not in r.stdout
    r = run("apdu", "--state", str(path), "XYZ")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
