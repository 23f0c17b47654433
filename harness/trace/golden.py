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

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path

from emulator.grammar.ids import JPKI
from harness.trace.decode import CommandKind
from harness.trace.recorder import dumps
from harness.trace.records import Cmd, Lost, Rsp, TraceRecord

#: The golden traces, shipped inside the package (also in an installed wheel); ``myna-hil trace
#: golden --dir DIR`` compares with (or ``--update`` writes) another directory.
GOLDEN_DIR = Path(__file__).resolve().parent / "golden_traces"
_KEY_DEPENDENT_EFS = {
    ("jpki", JPKI.EF_SIGN_CERT),
    ("jpki", JPKI.EF_SIGN_CA_CERT),
    ("jpki", JPKI.EF_AUTH_CERT),
    ("jpki", JPKI.EF_AUTH_CA_CERT),
}
#: ISO INS codes (an ISO class) whose data is card-random or key-dependent.
_INS_EXTERNAL_AUTHENTICATE = 0x82
_INS_GET_CHALLENGE = 0x84

__all__ = ["GOLDEN_DIR", "compare", "dumps", "golden_path", "normalise", "update"]


def _mask_data(hexstr: str, what: str) -> str:
    """Keep the SW (last 4 hex digits), replace the data before it by its length."""
    n = (len(hexstr) - 4) // 2
    return f"<{what} {n} bytes>{hexstr[-4:]}" if n else hexstr


def _iso(cmd: Cmd, ins: int) -> bool:
    return cmd.ins == ins and not cmd.proprietary


def _masked_answer(cmd: Cmd | None, hexstr: str) -> str:
    """The recorded answer *hexstr* to *cmd* with card-random or key-dependent data masked."""
    if cmd is None:
        return hexstr
    if _iso(cmd, _INS_GET_CHALLENGE):
        return _mask_data(hexstr, "challenge")
    if cmd.proprietary and cmd.ins == JPKI.INS_COMPUTE_DIGITAL_SIGNATURE:
        return _mask_data(hexstr, "signature")
    if cmd.kind is CommandKind.READ and (cmd.app, cmd.ef) in _KEY_DEPENDENT_EFS:
        return _mask_data(hexstr, "certificate")
    return hexstr


def normalise(records: Sequence[TraceRecord]) -> list[TraceRecord]:
    """A copy of *records* fit for comparison with a golden file."""
    labels: dict[str, str] = {}

    def label(fp: str) -> str:
        return labels.setdefault(fp, f"F{len(labels) + 1}")

    def labelled(fpv: Mapping[str, str] | None) -> dict[str, str] | None:
        return None if fpv is None else {k: label(v) for k, v in fpv.items()}

    commands = {r.i: r for r in records if isinstance(r, Cmd)}
    out: list[TraceRecord] = []
    for rec in records:
        r = dataclasses.replace(rec, time=None, t=None)
        if isinstance(r, Cmd):
            fp = None if r.fp is None else label(r.fp)
            r = dataclasses.replace(r, fp=fp, fpv=labelled(r.fpv))
            if _iso(r, _INS_EXTERNAL_AUTHENTICATE):
                r = dataclasses.replace(r, hex=r.hex[:10] + "<cryptogram>")
        elif isinstance(r, Rsp):
            r = dataclasses.replace(
                r, latency_ms=None, hex=_masked_answer(commands.get(r.i), r.hex)
            )
        elif isinstance(r, Lost):
            r = dataclasses.replace(r, latency_ms=None)
        out.append(r)
    return out


def golden_path(unit: str, directory: Path = GOLDEN_DIR) -> Path:
    return directory / f"{unit}.jsonl"


def compare(unit: str, records: Sequence[TraceRecord], directory: Path = GOLDEN_DIR) -> str | None:
    """``None`` when *records* match the golden file of *unit*, else a unified diff."""
    path = golden_path(unit, directory)
    got = dumps(normalise(records))
    if not path.exists():
        return f"no golden trace {path}; create it with 'myna-hil trace golden --update'"
    want = path.read_text(encoding="utf-8")
    if got == want:
        return None
    diff = difflib.unified_diff(
        want.splitlines(), got.splitlines(), str(path), "this run", lineterm="", n=1
    )
    return "\n".join(list(diff)[:40])


def update(unit: str, records: Sequence[TraceRecord], directory: Path = GOLDEN_DIR) -> Path:
    path = golden_path(unit, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(normalise(records)), encoding="utf-8")
    return path
