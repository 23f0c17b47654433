"""The CI examples in ``ci/examples/`` run: their YAML is parsed, their ``run:`` /
``script:`` steps are run in order as a CI runner would (each step a ``bash -eo pipefail``
script, ``if: always()`` / ``after_script`` steps also after a failure), in a throwaway
"vendor repository" with a small app test.

Only the steps that download packages (``apt-get``, ``pip install``) are skipped, each with
its reason, and only after checking that what they would install is here. The shared pcscd of
this machine is reused and stays up: the stop step gets a marker of its own, so it stops
nothing it did not start. The served card uses vpcd slot 6 under its lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from harness.cikit import pcscd
from harness.scenarios.runner import all_units
from tests.support.pcscd import ensure_pcscd
from tests.support.slots import slot_lock

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "ci" / "examples"
SLOT = 6  # shared with tests/harness/test_served.py and tests/panel (one lock)

#: A vendor's app test: raw APDUs over the plugin's transport, the card's controls.
APP_TEST = """
SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_PIN = bytes.fromhex("00A4020C020018")
STATUS = bytes.fromhex("00200080")


def auth_status(transport):
    transport.transmit(SELECT_JPKI)
    transport.transmit(SELECT_AUTH_PIN)
    return transport.transmit(STATUS).hex().upper()


def test_a_fresh_card_has_three_tries(myna_transport):
    assert auth_status(myna_transport) == "63C3"


def test_a_blocked_pin_says_so(myna_card, myna_transport):
    myna_card.block("auth")
    assert auth_status(myna_transport) in ("6983", "63C0")
"""


@dataclass
class Step:
    script: str
    always: bool = False  # if: always() / after_script


def github_steps(doc: dict) -> tuple[list[Step], dict[str, str]]:
    (job,) = doc["jobs"].values()
    steps = [
        Step(s["run"], always="always()" in str(s.get("if", "")))
        for s in job["steps"]
        if "run" in s
    ]
    assert all("uses" in s or "run" in s for s in job["steps"])
    return steps, {k: str(v) for k, v in job.get("env", {}).items()}


def gitlab_steps(doc: dict) -> tuple[list[Step], dict[str, str]]:
    (job,) = (v for k, v in doc.items() if isinstance(v, dict) and "script" in v)
    steps = [Step(s) for s in job.get("before_script", []) + job["script"]]
    steps += [Step(s, always=True) for s in job.get("after_script", [])]
    return steps, {k: str(v) for k, v in job.get("variables", {}).items()}


def _apt_installed(package: str) -> bool:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return out.stdout == "install ok installed"


def network_install(script: str) -> str | None:
    """Why *script* is skipped (it downloads packages), after checking that what it would
    install is present; None for a step that runs."""
    if "apt-get install" in script:
        words = script.replace("\\\n", " ").split()
        wanted = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
        missing = [p for p in wanted if not _apt_installed(p)]
        assert not missing, f"the skipped apt step would install {missing}: install them here"
        return f"apt-get downloads packages; {' '.join(wanted)} are installed here"
    if "pip install" in script:
        metadata.version("myna-hil")
        metadata.version("pytest")
        return "pip downloads packages; myna-hil and pytest are in this environment"
    return None


def run_steps(steps: list[Step], env: dict[str, str], cwd: Path) -> list[tuple[str, str]]:
    """Run the steps as a CI runner does; (script, output) of each step run; a failed step
    fails the test after the ``always`` steps ran."""
    prelude = "" if shutil.which("sudo") else 'sudo() { "$@"; }\n'  # root in a container
    ran: list[tuple[str, str]] = []
    failed: str | None = None
    for step in steps:
        if failed and not step.always:
            continue
        reason = network_install(step.script)
        if reason:
            print(f"skipped step ({reason}): {step.script.strip()}")
            continue
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", prelude + step.script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        ran.append((step.script, proc.stdout + proc.stderr))
        if proc.returncode != 0 and failed is None:
            failed = f"step failed ({proc.returncode}): {step.script}\n{proc.stdout}{proc.stderr}"
    assert failed is None, failed
    return ran


@pytest.fixture
def vendor_repo(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text(APP_TEST)
    return tmp_path


def _env(job_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        pytest.skip("the examples' pcscd steps need root (or sudo); this run has neither")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYNA_", "PYTEST_"))}
    env.update(job_env)
    env["MYNA_VPCD_SLOT"] = str(SLOT)  # the job's slot 0 is another test's here
    env["MYNA_PCSCD_MARKER"] = str(tmp_path / "pcscd.pid")  # never this machine's marker
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _check_reports(reports: Path) -> None:
    app = ET.parse(reports / "app.xml").getroot()
    suite = app if app.tag == "testsuite" else app.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "0"
    n = str(len(all_units()))
    inproc = ET.parse(reports / "scenarios.xml").getroot().find("testsuite")
    assert inproc is not None and inproc.get("tests") == n and inproc.get("failures") == "0"
    served = ET.parse(reports / "scenarios-vpcd.xml").getroot().find("testsuite")
    assert served is not None and served.get("failures") == "0"
    assert served.find("properties/property").get("value") == f"vpcd slot {SLOT}"  # type: ignore[union-attr]
    assert int(served.get("tests") or 0) > 0


@pytest.mark.vpcd
@pytest.mark.parametrize(
    ("example", "parse"),
    [("github-actions.yml", github_steps), ("gitlab-ci.yml", gitlab_steps)],
    ids=["github", "gitlab"],
)
def test_example_job_runs(example: str, parse: object, vendor_repo: Path, tmp_path: Path) -> None:
    ensure_pcscd()
    steps, job_env = parse(yaml.safe_load((EXAMPLES / example).read_text()))  # type: ignore[operator]
    assert any(network_install(s.script) for s in steps)  # the install steps are recognised
    env = _env(job_env, tmp_path)
    before = pcscd.running_pcscd()
    with slot_lock(SLOT):
        ran = run_steps(steps, env, vendor_repo)
    scripts = [s for s, _ in ran]
    assert any("ci pcscd start" in s for s in scripts) and any(
        "ci pcscd stop" in s for s in scripts
    )
    outputs = "".join(out for _, out in ran)
    assert "reusing it" in outputs or "socket-activated" in outputs or "started pcscd" in outputs
    assert "nothing to stop" in outputs  # the shared pcscd was not started here: left alone
    assert pcscd.running_pcscd() == before
    _check_reports(vendor_repo / "reports")


def test_the_examples_parse_into_the_expected_steps() -> None:
    """Without pcscd too: both examples have the same steps, in the same order."""
    gh, gh_env = github_steps(yaml.safe_load((EXAMPLES / "github-actions.yml").read_text()))
    gl, gl_env = gitlab_steps(yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text()))
    assert gh_env == gl_env == {"MYNA_VPCD_SLOT": "0"}

    def kinds(steps: list[Step]) -> list[str]:
        keys = ("apt-get", "pip install", "pcscd start", "pytest", "--all --junit", "--slot")
        out = []
        for s in steps:
            out.append(next((k for k in (*keys, "pcscd stop") if k in s.script), s.script))
        return out

    assert kinds(gh) == kinds(gl)
    assert [s.always for s in gh] == [s.always for s in gl] == [False] * 6 + [True]
    json.dumps([s.script for s in gh + gl])
