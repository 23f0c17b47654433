"""Phantom-lockout forensics: every retry-counter decrement in a trace, with a cause.

The card decrements a counter on every VERIFY with data that it does not reject up front
(blocked ``6984``, impossible length ``6700``), *before* comparing; a correct value restores
it (``9000``). So a decrement is visible as a ``63Cx`` answer, or as a VERIFY that got no
answer at all (power lost between the decrement and the restore).

Causes are inferred from the per-trace fingerprints (:mod:`harness.trace.fingerprint`), in
this order: power lost; the identical value re-sent right after it failed with nothing shown
to the user in between (automatic retry; a trace without the apps' ``shown`` / ``entered``
notes cannot tell this from a user typing the same wrong value twice);
a normalised form of the value equals a value the card accepted for this PIN (the app
transformed what was typed); the value belongs to or was sent to another PIN (tried on
another application); otherwise the user typed a wrong value. Notes in which an app reports
what it showed reveal status misreadings, which spend no try but look like a lockout.
A control record (the control panel's click) counts as an interaction; a ``set-pin`` /
``new-card`` control makes the values accepted before it old, as a successful CHANGE does.

Traces recorded by ``myna-hil tap`` also hold the commands the tap refused to forward (its
tries floor): a ``refused`` note of actor ``tap`` names the command (``i``) and the tries the
card had (``tries``). A refused command spent nothing; when it re-sends the value that just
failed, it is reported as the automatic retry it is, without a decrement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from emulator.grammar import tries_left
from emulator.pins import SPECS
from harness.trace.decode import CommandKind
from harness.trace.records import Cmd, Control, Lost, Note, Reset, Rsp, TraceRecord

PIN_LABELS = {
    "auth": "JPKI auth PIN",
    "sign": "JPKI signing password",
    "juki": "Juki PIN",
    "helper": "text-AP PIN",
    "text-0012": "text-AP EF 0012",
    "common": "common-AP PIN",
    "text-a": "text-AP check number A",
    "text-b": "text-AP check number B",
    "surface-a": "surface-AP check number A",
    "surface-b": "surface-AP check number B",
}


class Cause(StrEnum):
    USER_WRONG = "user typed a wrong value"
    APP_TRANSFORM = "app transformed the typed value"
    OTHER_APPLICATION = "same value tried on another application's PIN"
    AUTO_RETRY = "automatic retry by the app"
    TEARING = "power lost between decrement and restore"
    STATUS_MISREAD = "status misread (no try was spent)"


REMEDIES: dict[Cause, str] = {
    Cause.USER_WRONG: "enter the correct value; if it is forgotten or blocked, re-set it "
    "(counter for any PIN; smartphone app + kiosk for the two JPKI secrets)",
    Cause.APP_TRANSFORM: "fix the app: send exactly the typed characters as ASCII "
    "(no case change, convert full-width digits, strip newlines before sending, never after)",
    Cause.OTHER_APPLICATION: "fix the app: verify each application's PIN only with the value "
    "the user entered for that PIN; never probe other applications with it",
    Cause.AUTO_RETRY: "fix the app: never repeat a failed VERIFY; show the tries left (63Cx) "
    "and let the user decide",
    Cause.TEARING: "keep the card on the reader until the answer arrives; a counter re-set "
    "overwrites the PIN and restores the tries (the correct PIN also restores them "
    "while any are left)",
    Cause.STATUS_MISREAD: "fix the app: read tries only from 63Cx; 9000 to an empty VERIFY "
    "means 'verified in this session', 6984 means blocked or unusable",
}

#: Notes that mean the user saw or did something between two APDUs.
INTERACTIONS = frozenset({"shown", "entered"})
#: Control records (the control panel's) that give a PIN a new value.
NEW_VALUE_CONTROLS = frozenset({"set-pin", "new-card"})
#: The note ``myna-hil tap`` writes for a command it did not forward (fields ``i``, ``tries``).
TAP_ACTOR, REFUSED_EVENT = "tap", "refused"

_TRANSFORM_DETAIL = {
    "case": "the correct value with the case of its letters changed",
    "width": "the correct value in another Unicode form (full-width characters)",
    "space": "the correct value with whitespace (e.g. a newline) added",
    "norm": "the correct value changed in case, width and/or whitespace",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One decrement (or, for a status misread, one phantom) attributed to a cause."""

    index: int  # APDU index in the trace
    app: str
    pin: str
    sw: str  # the answer ("lost" when none)
    tries_left: int | None
    cause: Cause
    detail: str
    decrement: bool = True

    @property
    def remedy(self) -> str:
        return REMEDIES[self.cause]


@dataclass(frozen=True)
class Explanation:
    findings: tuple[Finding, ...]
    apdus: int
    decrements: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    refused: int = 0  # commands a tap did not forward

    def causes(self) -> list[Cause]:
        return [f.cause for f in self.findings]


@dataclass
class _Attempt:
    index: int
    app: str
    pin: str
    fp: str | None
    fpv: Mapping[str, str]
    sw: int | None  # None: no answer (power lost)
    epoch: int
    interaction: int  # user-visible events so far (an app showing a result, a user entry)
    confirmed: tuple[int, int | None] | None = None  # status query after a power loss
    refused: int | None = None  # not forwarded by a tap; the tries the card had (-1: unknown)


def _answers(records: Sequence[TraceRecord]) -> dict[int, Rsp | Lost]:
    return {r.i: r for r in records if isinstance(r, Rsp | Lost)}


def _refusals(records: Sequence[TraceRecord]) -> dict[int, int]:
    """APDU index -> tries the card had (-1: not reported), for the commands a tap refused."""
    out: dict[int, int] = {}
    for r in records:
        if isinstance(r, Note) and (r.actor, r.event) == (TAP_ACTOR, REFUSED_EVENT):
            i, tries = r.fields.get("i"), r.fields.get("tries")
            if isinstance(i, int) and not isinstance(i, bool):
                out[i] = tries if isinstance(tries, int) and not isinstance(tries, bool) else -1
    return out


def explain(records: Sequence[TraceRecord]) -> Explanation:
    """Attribute every retry-counter decrement in *records* (a loaded trace) to a cause."""
    answers = _answers(records)
    refused = _refusals(records)
    epoch: dict[str, int] = defaultdict(int)
    accepted: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)  # fp -> APDU index
    attempts: list[_Attempt] = []
    # pin -> (index, sw, app) of the last status query
    status_sw: dict[str, tuple[int, int, str]] = {}
    findings: list[Finding] = []
    warnings: list[str] = []
    apdus = 0
    interaction = 0
    for rec in records:
        if isinstance(rec, Reset | Control) or (
            isinstance(rec, Note) and rec.event in INTERACTIONS
        ):
            interaction += 1
        if isinstance(rec, Control) and rec.action in NEW_VALUE_CONTROLS:
            # Re-set (one PIN) or a new card (every PIN): the values accepted so far are old.
            renewed: set[str] = {rec.pin} if rec.pin else {*SPECS, *epoch}
            for name in renewed:
                epoch[name] += 1
            continue
        if isinstance(rec, Note) and rec.event == "pin-status":
            misread = _misread(rec, status_sw)
            if misread:
                findings.append(misread)
            continue
        if not isinstance(rec, Cmd):
            continue
        apdus += 1
        i, pin, what = rec.i, rec.pin, rec.kind
        answer = answers.get(i)
        sw = answer.sw if isinstance(answer, Rsp) else None
        app = rec.app if rec.app is not None else "?"
        if pin is None:
            continue
        if what is CommandKind.VERIFY_STATUS:
            if sw is not None:
                status_sw[pin] = (i, sw, app)
                for a in reversed(attempts):
                    if a.pin == pin and a.sw is None and a.confirmed is None:
                        a.confirmed = (i, tries_left(sw))
                    if a.pin == pin:
                        break
                if sw == 0x9000:
                    warnings.append(
                        f"#{i}: {PIN_LABELS.get(pin, pin)} status answered 9000 "
                        "(verified in this session): not a tries count"
                    )
            continue
        fp = rec.fp
        if what is CommandKind.VERIFY:
            a = _Attempt(i, app, pin, fp, rec.fpv or {}, sw, epoch[pin], interaction)
            a.refused = refused.get(i)
            attempts.append(a)
            if sw == 0x9000 and fp:
                accepted[(pin, epoch[pin])].setdefault(fp, i)
        elif sw == 0x9000 and what in (CommandKind.CHANGE, CommandKind.RESET_NEW_VALUE):
            epoch[pin] += 1
            if fp:
                accepted[(pin, epoch[pin])].setdefault(fp, i)
    findings += _classify(attempts, accepted)
    findings.sort(key=lambda f: f.index)
    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        if f.decrement:
            counts[f.pin] += 1
    return Explanation(tuple(findings), apdus, dict(counts), tuple(warnings), len(refused))


def max_tries(pin: str) -> int | None:
    """The retry limit of *pin*; ``None`` for references that are no PIN (text-AP 0012)."""
    spec = SPECS.get(pin)
    return spec.max_tries if spec else None


def _misread(note: Note, status_sw: dict[str, tuple[int, int, str]]) -> Finding | None:
    pin = note.pin or ""
    shown = note.tries_shown
    if pin not in status_sw or shown is None:
        return None
    i, sw, app = status_sw[pin]
    real = tries_left(sw)
    if real == shown or (real is None and sw == 0x9000 and shown == max_tries(pin)):
        return None
    told = f"{real} tries left" if real is not None else f"{sw:04X}, which is not a tries count"
    return Finding(
        i,
        app,
        pin,
        f"{sw:04X}",
        real,
        Cause.STATUS_MISREAD,
        f"the card answered {told}; the app showed {shown} tries"
        f"{' (locked)' if shown == 0 else ''}",
        decrement=False,
    )


def _classify(
    attempts: list[_Attempt], accepted: dict[tuple[str, int], dict[str, int]]
) -> list[Finding]:
    out: list[Finding] = []
    previous: dict[str, _Attempt] = {}
    failed: dict[int, int] = {}  # attempt index -> the failed attempt it repeats
    for a in attempts:
        prev = previous.get(a.pin)
        previous[a.pin] = a
        if prev is not None and _repeats(a, prev):
            failed[a.index] = failed.get(prev.index, prev.index)
        if a.refused is not None:
            if a.index in failed:
                out.append(_refused_retry(a, failed[a.index]))
            continue
        n = tries_left(a.sw) if a.sw is not None else (a.confirmed[1] if a.confirmed else None)
        if a.sw is not None and n is None:
            continue  # 9000 (restored), 6984 (blocked), 6700 (length): no decrement
        correct = accepted.get((a.pin, a.epoch), {})
        sw = "lost" if a.sw is None else f"{a.sw:04X}"
        cause, detail = _cause(a, prev, correct, attempts, accepted)
        out.append(Finding(a.index, a.app, a.pin, sw, n, cause, detail))
    return out


def _repeats(a: _Attempt, prev: _Attempt) -> bool:
    """*a* re-sends the value of *prev*, which failed (or was refused by a tap), with nothing
    shown to the user in between."""
    failed = prev.refused is not None or (prev.sw is not None and tries_left(prev.sw) is not None)
    return (
        failed
        and prev.fp is not None
        and prev.fp == a.fp
        and prev.epoch == a.epoch
        and prev.interaction == a.interaction
    )


def _refused_retry(a: _Attempt, origin: int) -> Finding:
    """A re-send of a failed value that a tap did not forward: the retry loop, no try spent."""
    tries = a.refused if a.refused is not None and a.refused >= 0 else None
    return Finding(
        a.index,
        a.app,
        a.pin,
        "refused" if a.sw is None else f"{a.sw:04X}",
        tries,
        Cause.AUTO_RETRY,
        f"identical value re-sent after #{origin} failed; the tap refused it (its tries "
        "floor): nothing reached the card",
        decrement=False,
    )


def _cause(
    a: _Attempt,
    prev: _Attempt | None,
    correct: dict[str, int],
    attempts: list[_Attempt],
    accepted: dict[tuple[str, int], dict[str, int]],
) -> tuple[Cause, str]:
    if a.sw is None:
        was = " to the correct value" if a.fp in correct else ""
        seen = ""
        if a.confirmed is not None:
            seen = f" (status at #{a.confirmed[0]}: {a.confirmed[1]} left)"
        return Cause.TEARING, f"no answer{was}: the counter was spent, never restored{seen}"
    repeat = (
        prev is not None
        and prev.fp == a.fp
        and prev.epoch == a.epoch
        and prev.sw is not None
        and tries_left(prev.sw) is not None
    )
    if repeat and prev is not None and prev.interaction == a.interaction:
        return Cause.AUTO_RETRY, f"identical value re-sent after #{prev.index} failed"
    for kind in ("case", "width", "space", "norm"):
        v = a.fpv.get(kind)
        if v is not None and v in correct:
            return Cause.APP_TRANSFORM, f"{_TRANSFORM_DETAIL[kind]} (accepted at #{correct[v]})"
    for (pin, _), fps in accepted.items():
        if pin != a.pin and a.fp in fps:
            return (
                Cause.OTHER_APPLICATION,
                f"this is the {PIN_LABELS.get(pin, pin)}'s value (accepted at #{fps[a.fp]})",
            )
    for b in attempts:
        if b.pin != a.pin and b.fp == a.fp and b.index < a.index:
            return (
                Cause.OTHER_APPLICATION,
                f"the value just tried on the {PIN_LABELS.get(b.pin, b.pin)} (#{b.index})",
            )
    if repeat and prev is not None:
        return Cause.USER_WRONG, f"the same wrong value as #{prev.index}, entered again"
    if correct:
        return Cause.USER_WRONG, "a value the card did not accept, unrelated to the correct one"
    return Cause.USER_WRONG, "a value the card did not accept"


def format_explanation(expl: Explanation) -> str:
    """The human report of ``myna-hil trace explain``."""
    lines: list[str] = []
    if not expl.findings:
        lines.append(f"no retry-counter decrement in {expl.apdus} APDUs")
    for f in expl.findings:
        left = "" if f.tries_left is None else f", {f.tries_left} left"
        spent = "decrement" if f.decrement else "no decrement"
        lines.append(
            f"#{f.index:<4} {f.app}/{f.pin} ({PIN_LABELS.get(f.pin, f.pin)}) {f.sw}{left} [{spent}]"
        )
        lines.append(f"       cause:  {f.cause.value}: {f.detail}")
        lines.append(f"       remedy: {f.remedy}")
        if f.tries_left == 0:
            lines.append(
                "       now blocked: re-set at the municipal counter (JPKI secrets: "
                "also smartphone app + kiosk)"
            )
    lines += [f"note: {w}" for w in expl.warnings]
    total = ", ".join(f"{PIN_LABELS.get(p, p)} {n}" for p, n in sorted(expl.decrements.items()))
    lines.append(
        f"{sum(expl.decrements.values())} decrement(s) in {expl.apdus} APDUs"
        + (f": {total}" if total else "")
        + (f"; {expl.refused} command(s) refused by the tap, not sent" if expl.refused else "")
    )
    return "\n".join(lines)
