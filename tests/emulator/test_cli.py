"""``myna-emu init / show / apdu / import / export`` in-process, and the installed script."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import cli
from emulator.card import Card
from emulator.personalise import new_state
from tests.support.cards import template_pki

SELECT_JPKI = "00A4040C0AD392F000260100000001"
SECRETS = ["auth=8642", "sign=QZXW7319PLMK", "juki=9753", "helper=1357"]


@pytest.fixture(autouse=True)
def _reuse_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip RSA key generation in-process; the subprocess test below does the real thing."""
    monkeypatch.setattr(cli, "new_state", functools.partial(new_state, pki=template_pki()))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "card.db"
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
    assert tries == {
        "auth": (3, 3, False),
        "sign": (5, 5, False),
        "juki": (3, 3, False),
        "helper": (3, 3, False),
        "common": (3, 3, False),
        **{c: (10, 10, False) for c in ("text-a", "text-b", "surface-a", "surface-b")},
    }
    # the documented default values verify
    out = _apdu(
        state,
        capsys,
        SELECT_JPKI,
        "002000980431323334",
        "0020009B06" + b"ABC123".hex(),
        "00A4040C0AD3921000310001010401",
        "0020009C04" + b"3456".hex(),
        "00A4040C0AD3921000310001010408",
        "0020009104" + b"2345".hex(),
    )
    assert out == ["9000"] * 7


def test_init_refuses_to_overwrite(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = state.read_bytes()
    assert cli.main(["init", "--state", str(state)]) == 2
    assert "--force" in capsys.readouterr().err
    assert state.read_bytes() == before
    assert cli.main(["init", "--state", str(state), "--force", "--profile", "face-auth"]) == 0
    assert Card.open(state).state.profile == "face-auth"


@pytest.mark.parametrize(
    ("pin", "rule"),
    [
        ("auth=12a4", "4 digits"),
        ("auth=123", "4 digits"),
        ("sign=abc123", "A-Z and 0-9"),
        ("sign=ABC12", "6-16"),
        ("juki=34567", "4 digits"),
        ("helper=", "4 digits"),
    ],
)
def test_invalid_pin_is_refused_with_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pin: str, rule: str
) -> None:
    path = tmp_path / "card.db"
    assert cli.main(["init", "--state", str(path), "--pin", pin]) == 2
    err = capsys.readouterr().err
    assert rule in err and err.count("\n") == 1
    value = pin.split("=")[1]
    assert not value or value not in err, "a refused value is not echoed"
    assert not path.exists()


def test_unknown_pin_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["init", "--state", str(tmp_path / "c.db"), "--pin", "puk=1234"])
    assert exc.value.code == 2


def test_face_auth_card_takes_no_jpki_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "card.db"
    assert (
        cli.main(["init", "--state", str(path), "--profile", "face-auth", "--pin", "auth=1111"])
        == 2
    )
    assert "face" in capsys.readouterr().err
    assert cli.main(["init", "--state", str(path), "--profile", "face-auth"]) == 0
    pins = {p["pin"]: p["present"] for p in _show(path, capsys)["pins"]}
    assert pins == {
        "auth": False,
        "sign": False,
        "juki": True,
        "helper": True,
        "common": True,
        "text-a": True,
        "text-b": True,
        "surface-a": True,
        "surface-b": True,
    }


def test_show_never_prints_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "card.db"
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
        assert cli.main([cmd, "--state", str(tmp_path / "nope.db")]) == 2
        err = capsys.readouterr().err
        assert "myna-emu init" in err and err.count("\n") == 1
    assert not (tmp_path / "nope.db").exists()


def test_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("myna-emu")
    if not script.exists():
        pytest.skip("myna-emu is not installed next to this interpreter")
    path = tmp_path / "card.db"

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert run("init", "--state", str(path)).returncode == 0
    r = run("apdu", "--state", str(path), stdin=f"{SELECT_JPKI}\n0020009804{b'0000'.hex()}\n")
    assert (r.returncode, r.stdout.split()) == (0, ["9000", "63C2"])
    r = run("show", "--state", str(path))
    assert r.returncode == 0 and "auth" in r.stdout and "1234" not in r.stdout
    r = run("apdu", "--state", str(path), "XYZ")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_export_import_round_trip(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _apdu(state, capsys, SELECT_JPKI, "0020009804" + b"0000".hex())
    exported = state.with_suffix(".json")
    assert cli.main(["export", "--state", str(state), "-o", str(exported)]) == 0
    assert oct(exported.stat().st_mode & 0o777) == "0o600"
    assert json.loads(exported.read_text())["pins"]["auth"]["tries_left"] == 2
    copy = state.with_name("copy.db")
    assert cli.main(["import", str(exported), "--state", str(copy)]) == 0
    assert _show(copy, capsys) == _show(state, capsys)
    capsys.readouterr()
    assert cli.main(["import", str(exported), "--state", str(copy)]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(["export", "--state", str(state)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(exported.read_text())


def test_import_of_a_bad_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "myna-hil-card-state", "version": 1, "profile": 3}')
    assert cli.main(["import", str(bad), "--state", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'pins'" in err
    assert not (tmp_path / "x.db").exists()


def test_a_json_state_given_to_apdu_says_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.json"
    old.write_text('{"format": "myna-hil-card-state", "version": 1}')
    assert cli.main(["apdu", "--state", str(old), SELECT_JPKI]) == 2
    err = capsys.readouterr().err
    assert "myna-emu import" in err and err.count("\n") == 1


def test_busy_card_is_exit_1_one_line_naming_the_file(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    holder = sqlite3.connect(state, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        capsys.readouterr()
        args = [
            "apdu",
            "--state",
            str(state),
            "--wait",
            "0.1",
            SELECT_JPKI,
            "0020009804" + b"0000".hex(),
            "00200098",
        ]
        assert cli.main(args) == 1
        captured = capsys.readouterr()
        assert captured.out.split() == ["9000", "6581"], "nothing after the failed change"
        assert captured.err.count("\n") == 1 and str(state) in captured.err
        assert "busy" in captured.err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert Card.open(state).state.pins["auth"].tries_left == 3


@pytest.mark.parametrize("wait", ["-1", "x", "4000"])
def test_bad_wait_is_a_usage_error(state: Path, wait: str) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["apdu", "--state", str(state), "--wait", wait, SELECT_JPKI])
    assert exc.value.code == 2


def _script(name: str) -> Path:
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        pytest.skip(f"{name} is not installed next to this interpreter")
    return script


def test_read_only_card_is_refused_not_faked(tmp_path: Path) -> None:
    """A card on a read-only file system: the change is refused on one line, never faked."""
    import os
    import shutil

    script = _script("myna-emu")
    work = tmp_path / "ro"
    work.mkdir()
    path = work / "card.db"
    assert (
        subprocess.run(
            [str(script), "init", "--state", str(path)],
            capture_output=True,
            timeout=120,
            check=False,
        ).returncode
        == 0
    )
    prefix: list[str] = []
    if os.geteuid() == 0:  # root writes through file modes: mount the directory read-only
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("running as root without unshare(1): cannot make a read-only mount")
        mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        prefix = [unshare, "-m", "sh", "-c", mount, str(work)]
    else:
        path.chmod(0o444)
        work.chmod(0o555)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, str(script), *args, "--state", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    r = run("apdu", SELECT_JPKI, "0020009804" + b"0000".hex())
    shown = run("show")
    work.chmod(0o755)
    path.chmod(0o600)
    if "mount:" in r.stderr:
        pytest.skip(f"cannot make a read-only mount here: {r.stderr.strip()}")
    assert shown.returncode == 0 and "auth        3 / 3" in shown.stdout, shown.stderr
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and str(path) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert "63C2" not in r.stdout, "no decrement is reported that was not made durable"
    assert Card.open(path).state.pins["auth"].tries_left == 3


def test_twelve_cli_processes_spend_five_tries_once_each(state: Path) -> None:
    """The issue's measurement: 12 concurrent one-guess runs against the signing password."""
    script = _script("myna-emu")
    wrong = "0020009B06" + b"ZZZ999".hex()
    procs = [
        subprocess.Popen(
            [str(script), "apdu", "--state", str(state), "--wait", "60", SELECT_JPKI, wrong],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(12)
    ]
    answers = [p.communicate(timeout=120)[0].split()[-1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(a for a in answers if a.startswith("63C")) == [f"63C{n}" for n in range(5)]
    assert answers.count("6984") == 7
    assert Card.open(state).state.pins["sign"].blocked
