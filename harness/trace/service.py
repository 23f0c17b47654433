"""The service side of a phantom lockout: what the revocation service said, read beside a trace.

A relying party that reports every failure as "PIN error" makes a healthy card look locked.
The trace shows the card's side (no decrement, the signature made); the service log
(:mod:`harness.revocation.log`) shows the certificate's side. This module joins them:

- the certificates the trace read from the card (JPKI EF ``0001`` signing, ``000A``
  authentication), reassembled from the READ BINARY answers;
- the service's decisions about those serial numbers (revoked, on hold) and its errors while
  the trace ran (by the service's clock against the trace's);
- expiry: a certificate used after its ``notAfter``.

Each finding is one sentence ending in its remedy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from emulator.grammar.ids import JPKI
from harness.revocation.log import ServiceEvent
from harness.trace.decode import CommandKind
from harness.trace.records import Cmd, Rsp, TraceRecord

_CERT_EFS = {JPKI.EF_SIGN_CERT: "signing", JPKI.EF_AUTH_CERT: "authentication"}
_JST = dt.timezone(dt.timedelta(hours=9))
_SIGN_INS = JPKI.INS_COMPUTE_DIGITAL_SIGNATURE

REMEDY_REISSUE = "re-issue at the counter"
REMEDY_RENEW = "renew it at the counter"
REMEDY_RETRY = "the card and its certificate are fine: retry later, and fix the service's message"


@dataclass(frozen=True, slots=True)
class ServiceFinding:
    what: str  # revoked | hold | expired | service-error
    sentence: str  # without the "counters ..." prefix
    serial: int | None = None


def certificates_in(records: Sequence[TraceRecord]) -> dict[str, x509.Certificate]:
    """``{"signing": cert, "authentication": cert}`` as far as the trace read them whole."""
    parts: dict[int, dict[int, bytes]] = {}
    answers = {r.i: r for r in records if isinstance(r, Rsp)}
    for rec in records:
        if not (isinstance(rec, Cmd) and rec.kind is CommandKind.READ and rec.app == "jpki"):
            continue
        if rec.ef not in _CERT_EFS or rec.p1 is None or rec.p2 is None or rec.p1 & 0x80:
            continue
        answer = answers.get(rec.i)
        if answer is None or answer.sw != 0x9000:
            continue
        try:
            data = bytes.fromhex(answer.hex[:-4])
        except ValueError:  # a golden file's "<certificate N bytes>"
            continue
        parts.setdefault(rec.ef, {})[rec.p1 << 8 | rec.p2] = data
    found: dict[str, x509.Certificate] = {}
    for ef, chunks in parts.items():
        blob = bytearray()
        for offset in sorted(chunks):
            if offset > len(blob):
                break
            blob[offset : offset + len(chunks[offset])] = chunks[offset]
        if len(blob) < 4 or blob[:2] != b"\x30\x82":
            continue
        size = int.from_bytes(blob[2:4], "big") + 4
        try:
            found[_CERT_EFS[ef]] = x509.load_der_x509_certificate(bytes(blob[:size]))
        except ValueError:
            continue
    return found


def _when(rec: TraceRecord) -> dt.datetime | None:
    """The record's time on the scenario clock, else its wall-clock time."""
    for value in (rec.clock, rec.time):
        if value:
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                continue
    return None


def _signing_times(records: Sequence[TraceRecord]) -> list[dt.datetime]:
    out = []
    for rec in records:
        if (
            isinstance(rec, Cmd)
            and rec.proprietary
            and rec.ins == _SIGN_INS
            and rec.ef == JPKI.EF_SIGN_KEY
        ):
            when = _when(rec)
            if when is not None:
                out.append(when)
    return out


def _date(when: dt.datetime) -> str:
    return when.astimezone(_JST).date().isoformat()


def explain_service(
    records: Sequence[TraceRecord], events: Sequence[ServiceEvent]
) -> list[ServiceFinding]:
    """Every service-side reason in *records* + *events* why a healthy card was refused."""
    certs = certificates_in(records)
    serials = {c.serial_number: name for name, c in certs.items()}
    times = [t for t in (_when(r) for r in records) if t is not None]
    start, end = (min(times), max(times)) if times else (None, None)
    findings: list[ServiceFinding] = []
    seen: set[tuple[str, int | None]] = set()
    errors: dict[tuple[str, str], list[ServiceEvent]] = {}
    for ev in events:
        if ev.type != "decision":
            continue
        in_window = start is None or end is None or start <= ev.clock <= end
        if ev.status in ("revoked", "hold") and ev.serial is not None:
            name = serials.get(ev.serial)
            if name is None and (certs or not in_window):
                continue
            key = (ev.status, ev.serial)
            if key in seen:
                continue
            seen.add(key)
            label = f"the {name or 'signing'} certificate"
            when = "" if ev.revoked_at is None else f" on {_date(ev.revoked_at)}"
            cause = ev.cause or ev.reason or "no reason given"
            verb = "put on hold" if ev.status == "hold" else "revoked"
            findings.append(
                ServiceFinding(
                    ev.status,
                    f"{label} was {verb}{when} because {cause}; {REMEDY_REISSUE}",
                    ev.serial,
                )
            )
        elif ev.status == "error" and in_window:
            errors.setdefault((ev.via or "?", ev.detail or "an error"), []).append(ev)
    for (via, detail), evs in errors.items():
        repeated = "" if len(evs) == 1 else f" ({len(evs)} times)"
        findings.append(
            ServiceFinding(
                "service-error",
                f"the revocation service failed ({via}: {detail}) at "
                f"{evs[0].clock.isoformat()}{repeated}; {REMEDY_RETRY}",
            )
        )
    used = _signing_times(records)
    for name, cert in certs.items():
        late = [t for t in used if t > cert.not_valid_after_utc]
        if name == "signing" and late:
            findings.append(
                ServiceFinding(
                    "expired",
                    f"the signing certificate expired on {_date(cert.not_valid_after_utc)} "
                    f"(the fifth birthday after issue) and was used on {_date(late[0])}; "
                    f"{REMEDY_RENEW}",
                    cert.serial_number,
                )
            )
    return findings


def format_service(findings: Sequence[ServiceFinding], decrements: int) -> str:
    """The service part of ``myna-hil trace explain --service-log``."""
    counters = (
        "counters untouched"
        if decrements == 0
        else f"{decrements} counter decrement(s), explained above"
    )
    if not findings:
        return f"service: {counters}; the service log shows no refusal of this card's certificates"
    lines = []
    for f in findings:
        serial = "" if f.serial is None else f" [serial {f.serial:X}]"
        lines.append(f"service: {counters}; {f.sentence}{serial}")
    return "\n".join(lines)
