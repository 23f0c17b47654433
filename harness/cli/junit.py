"""``myna-hil run --junit FILE``: scenario results as JUnit XML, one testcase per unit.

The failure message is the first failing step (``step: expected X, got Y``) or the error that
stopped the unit; the body lists every step, so a CI page shows the table the terminal shows.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.scenarios.base import ScenarioResult

__all__ = ["failure_message", "to_junit"]


def failure_message(result: ScenarioResult) -> str | None:
    """Why *result* failed, in one line; None when it passed or was skipped."""
    if result.ok or result.skipped is not None:
        return None
    for s in result.steps:
        if not s.ok:
            return f"{s.step}: expected {s.expected}, got {s.got}"
    return f"stopped: {result.error}"


def _steps(result: ScenarioResult) -> str:
    lines = [
        f"{'ok' if s.ok else 'FAIL'}  {s.step}: expected {s.expected}"
        + ("" if s.ok else f", got {s.got}")
        for s in result.steps
    ]
    if result.error:
        lines.append(f"stopped: {result.error}")
    return "\n".join(lines)


def to_junit(results: Sequence[ScenarioResult], seconds: float, transport: str) -> str:
    """The JUnit XML document (a ``testsuites`` root with one ``testsuite``)."""
    import xml.etree.ElementTree as ET  # only with --junit: every `run` loads this module

    failures = sum(failure_message(r) is not None for r in results)
    skipped = sum(r.skipped is not None for r in results)
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name="myna-hil scenarios",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="transport", value=transport)
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"myna-hil.{r.profile}",
            name=r.unit,
            time=f"{r.seconds:.3f}",
        )
        message = failure_message(r)
        if r.skipped is not None:
            ET.SubElement(case, "skipped", message=r.skipped)
        elif message is not None:
            failure = ET.SubElement(case, "failure", message=message, type="ScenarioFailure")
            failure.text = _steps(r)
        else:
            ET.SubElement(case, "system-out").text = f"{r.apdus} APDUs\n{_steps(r)}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
