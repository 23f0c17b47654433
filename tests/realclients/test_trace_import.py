"""``myna-hil trace import`` on logs the real tools made against ``myna-emu serve`` (slot 2).

pcsc-spy: a small PC/SC app (``spied_app.py``) runs with libpcscspy in place of
libpcsclite; ``cat ~/pcsc-spy > app.spy`` keeps the library's raw lines (pcsc-spy's own
recipe) and ``pcsc-spy -n app.spy`` prints them. OpenSC: ``pkcs15-tool`` and ``pkcs11-tool``
with ``debug = 9`` into a ``debug_file``. Each imported trace is checked against the
harness's own trace of the same run (the app's record; for OpenSC the serve-side recording
of ``myna-emu serve --panel``) and the emulator's traffic log: the same APDUs, the same
answers, the same ``trace explain`` findings, and no PIN in the output.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness.cli import main
from harness.trace.explain import Cause, explain
from harness.trace.recorder import read_trace
from harness.trace.records import Cmd, Rsp, TraceRecord
from tests.realclients import conftest
from tests.realclients.conftest import READER, SLOT, Served, myna_emu, opensc_env

pytestmark = [pytest.mark.vpcd]

SPIED_APP = Path(__file__).with_name("spied_app.py")
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib")

JPKI = "00A4040C0AD392F000260100000001"
JUKI = "00A4040C0AD3921000310001010401"


def _verify(value: bytes) -> str:
    return f"00200080{len(value):02X}{value.hex().upper()}"


#: The app's session: the signing password, then lower-cased (the app transformed it); a
#: wrong auth PIN sent twice (an automatic retry), the right one; the auth PIN tried on Juki.
APP_APDUS = [
    JPKI,
    "00A4020C02001B",
    _verify(b"ABC123"),
    _verify(b"abc123"),
    "00A4020C020018",
    "00200080",
    _verify(b"9999"),
    _verify(b"9999"),
    _verify(b"1234"),
    JUKI,
    "00A4020C02001C",
    _verify(b"1234"),
]
SECRETS = [v.hex().upper() for v in (b"ABC123", b"abc123", b"9999", b"1234")]


def _lib(name: str) -> str:
    for directory in LIB_DIRS:
        found = sorted(glob.glob(f"{directory}/{name}"))
        if found:
            return found[0]
    conftest._missing(f"{name} not found (package libpcsclite-dev ships libpcscspy)")
    raise AssertionError("unreachable")


def _apdus(records: list[TraceRecord]) -> list[tuple[str, str]]:
    answers = {r.i: r.hex for r in records if isinstance(r, Rsp)}
    return [(r.hex, answers.get(r.i, "")) for r in records if isinstance(r, Cmd)]


def _findings(records: list[TraceRecord]) -> list[tuple[int, str, str, int | None, Cause]]:
    return [(f.index, f.pin, f.sw, f.tries_left, f.cause) for f in explain(records).findings]


def _import(log: Path, out: Path, *extra: str) -> list[TraceRecord]:
    code = main(["trace", "import", str(log), "-o", str(out), *extra])
    assert code == 0
    text = out.read_text()
    for secret in SECRETS:
        assert secret not in text.replace(" ", "").upper()
    return read_trace(out)


def test_pcsc_spy_logs_of_a_pc_sc_app(served: Served, tmp_path: Path) -> None:
    if shutil.which("pcsc-spy") is None:
        conftest._missing("pcsc-spy is not installed (package libpcsclite-dev)")
    libs = tmp_path / "lib"
    libs.mkdir()
    (libs / "libpcsclite.so.1").symlink_to(_lib("libpcscspy.so.0"))
    (libs / "libpcsclite_nospy.so.1").symlink_to(_lib("libpcsclite.so.1"))
    home = tmp_path / "home"
    home.mkdir()
    fifo = home / "pcsc-spy"
    os.mkfifo(fifo)
    raw = tmp_path / "app.spy"
    own = tmp_path / "app-own.jsonl"
    served.start()
    with raw.open("wb") as sink:
        # pcsc-spy's recipe for a log to keep: cat ~/pcsc-spy > logfile
        cat = subprocess.Popen(["cat", str(fifo)], stdout=sink)
        env = {**os.environ, "HOME": str(home), "LD_LIBRARY_PATH": str(libs)}
        try:
            app = subprocess.run(
                [sys.executable, str(SPIED_APP), READER, str(own), *APP_APDUS],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            cat.wait(timeout=30)
        finally:
            if cat.poll() is None:  # the app never opened the FIFO
                cat.kill()
                cat.wait()
    assert app.returncode == 0, app.stderr
    shown = subprocess.run(
        ["pcsc-spy", "-n", str(raw)], capture_output=True, text=True, timeout=60, check=False
    )
    display = tmp_path / "app.txt"
    display.write_text(shown.stdout)
    assert "SCardTransmit" in shown.stdout, shown.stderr
    # Colours, thread tags and no handles or times (-d) read the same, without latencies.
    tagged = tmp_path / "app-tagged.txt"
    tagged.write_text(
        subprocess.run(
            ["pcsc-spy", "-t", "-d", str(raw)], capture_output=True, text=True, timeout=60
        ).stdout
    )

    expected = read_trace(own)
    assert len(_apdus(expected)) == len(APP_APDUS)
    from_raw = _import(raw, tmp_path / "raw.jsonl")
    from_display = _import(display, tmp_path / "display.jsonl")
    for imported in (from_raw, from_display):
        assert _apdus(imported) == _apdus(expected)
        assert _findings(imported) == _findings(expected)
    assert [h for h, _ in _apdus(from_raw)] == [c for c, _ in served.exchanges()]
    assert {f[4] for f in _findings(from_raw)} == {
        Cause.APP_TRANSFORM,
        Cause.USER_WRONG,
        Cause.AUTO_RETRY,
        Cause.OTHER_APPLICATION,
    }
    # Timing: the raw lines have wall-clock times, pcsc-spy's display each call's duration.
    raw_answers = [r for r in from_raw if isinstance(r, Rsp)]
    assert all(r.latency_ms is not None and r.time is not None for r in raw_answers)
    assert [r.t for r in raw_answers] == sorted(r.t for r in raw_answers)
    assert all(r.latency_ms is not None for r in from_display if isinstance(r, Rsp))
    from_tagged = _import(tagged, tmp_path / "tagged.jsonl", "--format", "pcsc-spy")
    assert _apdus(from_tagged) == _apdus(expected)
    assert all(r.latency_ms is None for r in from_tagged if isinstance(r, Rsp))


def _start_with_panel(served: Served) -> tuple[str, str]:
    """Start ``myna-emu serve --panel`` in slot 2; the panel's address and token."""
    with served.log.open("ab") as log:
        served.proc = subprocess.Popen(
            [
                myna_emu(),
                "serve",
                "--state",
                str(served.state),
                "--slot",
                str(SLOT),
                "-vv",
                "--panel",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    conftest._wait(served._present_or_dead, "the served card did not appear", served.log)
    found = re.search(r"control panel at (http://[^/\s]+)/\?token=(\S+)", served.log.read_text())
    assert found, served.log.read_text()
    return found[1], found[2]


def _panel_trace(base: str, token: str, out: Path) -> list[TraceRecord]:
    request = urllib.request.Request(f"{base}/api/slots/0/trace", headers={"X-Panel-Token": token})
    with urllib.request.urlopen(request, timeout=10) as answer:
        out.write_bytes(answer.read())
    return read_trace(out)


@pytest.mark.opensc
@pytest.mark.usefixtures("opensc")
def test_opensc_debug_log(served: Served, pkcs11_module: str, tmp_path: Path) -> None:
    debug = tmp_path / "opensc-debug.log"
    conf = tmp_path / "opensc.conf"
    ignored = Path(opensc_env()["OPENSC_CONF"]).read_text()  # this module's reader only
    conf.write_text(
        ignored.replace(
            "app default {", f"app default {{\n\tdebug = 9;\n\tdebug_file = {debug};", 1
        )
    )
    base, token = _start_with_panel(served)
    env = {**opensc_env(), "OPENSC_CONF": str(conf)}

    def tool(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), capture_output=True, text=True, env=env, timeout=60, check=False
        )

    # OPENSC_DEBUG=9 alone logs to stderr; the PKCS#11 runs log into the conf's debug_file.
    listing = subprocess.run(
        ["pkcs15-tool", "--reader", READER, "--list-pins"],
        capture_output=True,
        text=True,
        env={**opensc_env(), "OPENSC_DEBUG": "9"},
        timeout=60,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr[-2000:]
    stderr_log = tmp_path / "pkcs15-tool.stderr"
    stderr_log.write_text(listing.stderr)
    login = ("pkcs11-tool", "--module", pkcs11_module, "--login", "--list-objects")
    wrong = tool(*login, "--pin", "9999", "--token-label", "JPKI (User Authentication PIN)")
    assert "CKR_PIN_INCORRECT" in wrong.stderr + wrong.stdout
    right = tool(*login, "--pin", "1234", "--token-label", "JPKI (User Authentication PIN)")
    assert right.returncode == 0, right.stderr
    serve_side = _panel_trace(base, token, tmp_path / "panel.jsonl")

    listed = _import(stderr_log, tmp_path / "listing.jsonl")
    imported = _import(debug, tmp_path / "opensc.jsonl")
    first = len(_apdus(listed))
    assert first > 0 and _apdus(listed) + _apdus(imported) == _apdus(serve_side)
    assert [h for h, _ in _apdus(listed) + _apdus(imported)] == [c for c, _ in served.exchanges()]
    findings = _findings(imported)
    assert [(i + first, *rest) for i, *rest in findings] == _findings(serve_side)
    assert [f[4] for f in findings] == [Cause.USER_WRONG]
    meta = json.loads((tmp_path / "opensc.jsonl").read_text().splitlines()[0])
    assert meta["source_format"] == "opensc" and meta["atr"] == served.card().atr.hex().upper()
