"""Golden traces: every scenario's trace, normalised so that reruns compare equal.

Normalisation removes what legitimately differs between runs and keeps everything else:

- wall-clock ``time``, ``t`` and ``latency_ms`` are dropped (the scenario ``clock`` stays);
- fingerprints become ``F1``, ``F2``, ... in order of first appearance, so which values were
  equal is still checked while the per-trace key's randomness is not;
- card-random or key-dependent bytes keep their length but not their value: GET CHALLENGE
  answers, EXTERNAL AUTHENTICATE cryptograms, signatures and certificate reads.

Regenerate after an intended change with ``myna-hil trace golden --update`` (checked by
``tests/harness/test_golden.py``; plain ``myna-hil trace golden`` only compares).
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from harness.trace.recorder import Record

logger = logging.getLogger(__name__)

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "traces" / "golden"
_VOLATILE = ("time", "t", "latency_ms")
_KEY_DEPENDENT_EFS = {("jpki", "0001"), ("jpki", "0002"), ("jpki", "000A"), ("jpki", "000B")}


def _mask_data(hexstr: str, what: str) -> str:
    """Keep the SW (last 4 hex digits), replace the data before it by its length."""
    n = (len(hexstr) - 4) // 2
    return f"<{what} {n} bytes>{hexstr[-4:]}" if n else hexstr


def normalise(records: Sequence[Record]) -> list[Record]:
    """A copy of *records* fit for comparison with a golden file."""
    labels: dict[str, str] = {}

    def label(fp: str) -> str:
        return labels.setdefault(fp, f"F{len(labels) + 1}")

    commands = {r["i"]: r for r in records if r.get("type") == "cmd"}
    out: list[Record] = []
    for rec in records:
        r = {k: v for k, v in rec.items() if k not in _VOLATILE}
        kind = r.get("type")
        if "fp" in r:
            r["fp"] = label(r["fp"])
        if "fpv" in r:
            r["fpv"] = {k: label(v) for k, v in r["fpv"].items()}
        if kind == "cmd" and r.get("name") == "EXTERNAL AUTHENTICATE":
            r["hex"] = r["hex"][:10] + "<cryptogram>"
        if kind == "rsp":
            cmd = commands.get(r["i"], {})
            name = cmd.get("name", "")
            if name == "GET CHALLENGE":
                r["hex"] = _mask_data(r["hex"], "challenge")
            elif name == "COMPUTE DIGITAL SIGNATURE":
                r["hex"] = _mask_data(r["hex"], "signature")
            elif name == "READ BINARY" and (cmd.get("app"), cmd.get("ef")) in _KEY_DEPENDENT_EFS:
                r["hex"] = _mask_data(r["hex"], "certificate")
        out.append(r)
    return out


def dumps(records: Sequence[Record]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def golden_path(unit: str, directory: Path = GOLDEN_DIR) -> Path:
    return directory / f"{unit}.jsonl"


def compare(unit: str, records: Sequence[Record], directory: Path = GOLDEN_DIR) -> str | None:
    """``None`` when *records* match the golden file of *unit*, else a unified diff."""
    path = golden_path(unit, directory)
    got = dumps(normalise(records))
    if not path.exists():
        return f"no golden trace {path}; create it with 'myna-hil trace golden --update'"
    want = path.read_text(encoding="utf-8")
    if got == want:
        return None
    diff = difflib.unified_diff(want.splitlines(), got.splitlines(), str(path), "this run",
                                lineterm="", n=1)
    return "\n".join(list(diff)[:40])


def update(unit: str, records: Sequence[Record], directory: Path = GOLDEN_DIR) -> Path:
    path = golden_path(unit, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(normalise(records)), encoding="utf-8")
    return path
