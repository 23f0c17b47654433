"""The wheel as a user gets it: built from the sources, installed into a throwaway virtualenv,
run from a directory outside the repository.

One version source, ``--version`` and ``python -m`` on both CLIs, the licence and classifiers
in the metadata, and ``myna-hil trace golden`` comparing with the golden traces shipped inside
the package (before, it looked for ``traces/`` next to site-packages). The virtualenv gets
the wheel alone (``--no-deps``); its dependencies come from this test environment through a
``.pth`` line, so no network is needed.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import emulator
from harness.scenarios.runner import all_units

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    for package in ("emulator", "harness"):
        shutil.copytree(
            REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(src)],
        check=True,
        timeout=300,
    )  # fmt: skip
    (built,) = dist.glob("myna_hil-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies (construct, cryptography, pyscard...) from this environment; a plain
    # path line, so this environment's editable install of myna-hil is not loaded.
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def _run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def test_the_wheel_carries_licence_classifiers_version_and_golden_traces(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
    assert meta["Version"] == emulator.__version__
    assert "Framework :: Pytest" in meta.get_all("Classifier", [])
    assert meta["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    shipped = {Path(n).name for n in names if "/golden_traces/" in n}
    assert shipped >= {f"{u.name}.jsonl" for u in all_units()}
    assert not any(n.startswith(("tests/", "traces/")) for n in names)


def test_installed_clis_version_and_python_m(venv: Path, tmp_path: Path) -> None:
    v = emulator.__version__
    assert _run(venv, "myna-hil", "--version", cwd=tmp_path).stdout == f"myna-hil {v}\n"
    assert _run(venv, "myna-emu", "--version", cwd=tmp_path).stdout == f"myna-emu {v}\n"
    assert _run(venv, "python", "-m", "harness", "--version", cwd=tmp_path).stdout == (
        f"myna-hil {v}\n"
    )
    assert _run(venv, "python", "-m", "emulator", "--version", cwd=tmp_path).stdout == (
        f"myna-emu {v}\n"
    )
    where = _run(venv, "python", "-c", "import harness; print(harness.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not this checkout


def test_installed_trace_golden_uses_the_shipped_traces(venv: Path, tmp_path: Path) -> None:
    proc = _run(venv, "myna-hil", "trace", "golden", cwd=tmp_path)
    n = len(all_units())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.startswith(f"{n} of {n} scenario traces match {venv}")
    assert last.endswith("harness/trace/golden_traces")
    # --dir: the user's own directory (written by --update, then compared).
    mine = tmp_path / "golden"
    update = _run(venv, "myna-hil", "trace", "golden", "--update", "--dir", str(mine), cwd=tmp_path)
    assert update.returncode == 0, update.stderr
    assert len(list(mine.glob("*.jsonl"))) == n
    again = _run(venv, "myna-hil", "trace", "golden", "--dir", str(mine), cwd=tmp_path)
    assert again.returncode == 0 and f"{n} of {n} scenario traces match {mine}" in again.stdout
