"""The POSIX-only parts are guarded: on Windows no directory fsync and no ``/dev/tty``, and
``myna-hil ci pcscd`` refuses other systems in one line instead of failing half-way."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from emulator import store
from harness.cikit import pcscd
from harness.hil import session


def _no_open(*args: object, **kwargs: object) -> int:
    raise AssertionError(f"os.open called: {args}")


def test_no_directory_fsync_on_windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[object] = []
    monkeypatch.setattr(store.os, "fsync", lambda fd: calls.append(fd))
    store._fsync_dir(tmp_path)  # POSIX: the directory is opened and synced
    assert len(calls) == 1
    monkeypatch.setattr(store.os, "name", "nt")
    monkeypatch.setattr(store.os, "open", _no_open)
    store._fsync_dir(tmp_path)  # Windows cannot open a directory: skipped
    assert len(calls) == 1


def test_the_pin_prompt_asks_for_a_console_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session.os, "name", "nt")
    monkeypatch.setattr(session.os, "open", _no_open)  # no /dev/tty there
    monkeypatch.setattr(session.sys, "stdin", io.StringIO(""))  # not a console
    assert session.has_terminal() is False
    with pytest.raises(session.HilSetupError, match="needs a terminal; set MYNA_AUTH_PIN"):
        session.owner_pin({}, prompt=True, ask=lambda _: "1234")


def test_ci_pcscd_is_refused_off_linux_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for platform in ("darwin", "win32"):
        monkeypatch.setattr(pcscd.sys, "platform", platform)
        with pytest.raises(pcscd.CiError) as exc:
            pcscd.check_installed(pcscd.PcscdConfig())
        assert platform in str(exc.value) and "docs/ci.md" in str(exc.value)
        assert "\n" not in str(exc.value)
