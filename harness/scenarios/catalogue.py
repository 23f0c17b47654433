"""The catalogue, part 1: lockouts, the kiosk route and the municipal counter (rules 1-3)."""

from __future__ import annotations

from collections.abc import Callable

from emulator.protocol import PINS_OF, SPECS, Profile
from harness.actors.apps import (
    SHOWN_CHECK_LOCKED,
    SHOWN_IDENTITY_OK,
    SHOWN_LOCKED,
    SHOWN_OK,
    SHOWN_SIGNED,
    ETaxSigner,
    IdentityVerificationApp,
    MynaportalLogin,
    wrong_check_number,
    wrong_pin,
)
from harness.actors.counter import CounterTerminal, IdentityCheck, Status, Who
from harness.actors.issuer import reset_pin
from harness.actors.kiosk import GO_COUNTER, START_AGAIN, JlisBackend, Kiosk, ResetApp, Ticket
from harness.errors import ApduError
from harness.scenarios.base import FACE_AUTH, STANDARD, Ctx, ScenarioSkipped, scenario
from harness.sessions import JukiSession, SurfaceSession, TextSession
from harness.trace.recorder import note

WRONG = {
    "auth": "9999",
    "sign": "WRONG99",
    "juki": "0000",
    "helper": "0000",
    "text-b": "99999999999999",
}
NEW = {"auth": "4321", "sign": "NEWPASS9", "juki": "6543", "helper": "5432"}
DOCUMENT = b"e-Tax return 2025, TEST"


def sw_of(action: Callable[[], object]) -> str:
    """``"9000"`` if *action* succeeds, else the status word it failed with."""
    try:
        action()
    except ApduError as exc:
        return f"{exc.sw:04X}"
    return "9000"


def block_with_app(ctx: Ctx, pin: str) -> None:
    """Wrong entries through the reader apps until *pin* is blocked, each step checked."""
    full = SPECS[pin].max_tries
    for n in range(full - 1, -1, -1):
        want = SHOWN_LOCKED if n == 0 else wrong_pin(n)
        if pin == "auth":
            got = MynaportalLogin(ctx.transport, rng=ctx.rng).login(WRONG[pin]).shown
        else:
            got = ETaxSigner(ctx.transport, rng=ctx.rng).sign(WRONG[pin], DOCUMENT).shown
        ctx.check(f"{pin}: wrong entry {full - n}", want, got)


def block_raw(ctx: Ctx, pin: str) -> None:
    """Wrong VERIFYs on the text-AP / Juki PIN: 63C2, 63C1, 63C0."""
    for n in (2, 1, 0):
        note(ctx.transport, "tester", "entered", pin=pin)
        if pin == "juki":
            got = sw_of(lambda: JukiSession(ctx.transport).verify(WRONG[pin]))
        else:
            got = sw_of(lambda: TextSession(ctx.transport).verify(WRONG[pin]))
        ctx.check(f"{pin}: wrong VERIFY {3 - n}", f"63C{n}", got)


def login(ctx: Ctx, step: str, expected: str, pin: str | None = None) -> None:
    value = pin if pin is not None else ctx.pins["auth"]
    ctx.check(step, expected, MynaportalLogin(ctx.transport, rng=ctx.rng).login(value).shown)


def sign(ctx: Ctx, step: str, expected: str, password: str | None = None) -> None:
    value = password if password is not None else ctx.pins["sign"]
    got = ETaxSigner(ctx.transport, rng=ctx.rng).sign(value, DOCUMENT).shown
    ctx.check(step, expected, got)


# --- docs/scenarios.md rule 1: lockouts ------------------------------------------------------


@scenario("lockout-auth", "3 wrong auth PINs; login refused")
def lockout_auth(ctx: Ctx) -> None:
    ctx.expect_counters("counters before", **ctx.full_counters())
    block_with_app(ctx, "auth")
    login(ctx, "login with the correct PIN", SHOWN_LOCKED)
    ctx.expect_counters("auth blocked, others untouched", auth="blocked", sign=5, juki=3, helper=3)


@scenario("lockout-sign", "5 wrong signing passwords")
def lockout_sign(ctx: Ctx) -> None:
    block_with_app(ctx, "sign")
    sign(ctx, "sign with the correct password", SHOWN_LOCKED)
    ctx.expect_counters("sign blocked, others untouched", auth=3, sign="blocked", juki=3, helper=3)


def _lockout_raw(ctx: Ctx, pin: str) -> None:
    block_raw(ctx, pin)
    session = JukiSession if pin == "juki" else TextSession
    ctx.check(
        "correct PIN on the blocked reference",
        "6984",
        sw_of(lambda: session(ctx.transport).verify(ctx.pins[pin])),
    )
    expected = ctx.full_counters()
    expected[pin] = "blocked"
    ctx.expect_counters(f"{pin} blocked, others untouched", **expected)


@scenario("lockout-helper", "3 wrong input-helper PINs", profiles=(STANDARD, FACE_AUTH))
def lockout_text(ctx: Ctx) -> None:
    _lockout_raw(ctx, "helper")


@scenario("lockout-juki", "3 wrong Juki PINs", profiles=(STANDARD, FACE_AUTH))
def lockout_juki(ctx: Ctx) -> None:
    _lockout_raw(ctx, "juki")


@scenario(
    "lockout-check-b",
    "identity app: 10 wrong check numbers B; PINs untouched",
    profiles=(STANDARD, FACE_AUTH),
)
def lockout_check_b(ctx: Ctx) -> None:
    """Identity-verification apps read the text AP with check number B (typed from the card
    face), not the 4-digit PIN. Mistyping it blocks that reference only: the four PINs and the
    other check numbers (the surface AP's B has its own counter) are untouched [model tries]."""
    if "text-b" not in ctx.pins:
        raise ScenarioSkipped("the check numbers printed on this card are not known")
    checks: dict[str, str | int] = {"text-a": 10, "text-b": 10, "surface-a": 10, "surface-b": 10}
    ctx.expect_counters("counters before", **ctx.full_counters(), **checks)
    app = IdentityVerificationApp(ctx.transport, rng=ctx.rng)
    ctx.check("correct check number B", SHOWN_IDENTITY_OK, app.check(ctx.pins["text-b"]).shown)
    for n in range(9, -1, -1):
        note(ctx.transport, "tester", "entered", pin="text-b")
        want = SHOWN_CHECK_LOCKED if n == 0 else wrong_check_number(n)
        ctx.check(f"text-b: wrong entry {10 - n}", want, app.check(WRONG["text-b"]).shown)
    ctx.check(
        "correct check number B on the blocked reference",
        SHOWN_CHECK_LOCKED,
        app.check(ctx.pins["text-b"]).shown,
    )
    ctx.expect_counters(
        "text-b blocked; PINs and the other check numbers untouched",
        **ctx.full_counters(),
        **{**checks, "text-b": "blocked"},
    )
    ctx.check(
        "surface AP: its own check number B still opens the card face",
        "9000",
        sw_of(
            lambda: SurfaceSession(ctx.transport).verify_check_number("B", ctx.pins["surface-b"])
        ),
    )
    ctx.check(
        "counter: unblock check number B (issuer authentication)",
        "9000",
        sw_of(lambda: reset_pin(ctx.transport, "text-b", None)),
    )
    ctx.check(
        "correct check number B after the unblock",
        SHOWN_IDENTITY_OK,
        app.check(ctx.pins["text-b"]).shown,
    )
    ctx.expect_counters("counters after", **ctx.full_counters(), **checks)


# --- docs/scenarios.md rule 2: the kiosk route----------------------------------------------


def _start(ctx: Ctx, backend: JlisBackend, pin: str) -> Ticket | None:
    started = ResetApp(ctx.transport, backend).start(pin)
    ok = isinstance(started, Ticket)
    ctx.check(
        f"app: start {pin} reset",
        "request started",
        "request started" if ok else getattr(started, "message", started),
    )
    return started if isinstance(started, Ticket) else None


def _kiosk_reset(ctx: Ctx, pin: str, other: str) -> None:
    backend = JlisBackend(ctx.clock)
    block_with_app(ctx, pin)
    ticket = _start(ctx, backend, pin)
    ctx.clock.advance(hours=23, minutes=59)
    if ticket is None:
        return
    result = Kiosk(ctx.transport, backend).reset(ticket, ctx.pins[other], NEW[pin])
    ctx.check(
        f"kiosk (+23h59m) with the {other} secret", f"re-set the {pin} secret", result.message
    )
    ctx.pins[pin] = NEW[pin]
    if pin == "auth":
        login(ctx, "login with the new auth PIN", SHOWN_OK)
    else:
        sign(ctx, "sign with the new password", SHOWN_SIGNED)
    ctx.expect_counters("counters after", **ctx.full_counters())


@scenario("kiosk-reset-auth", "auth blocked; app start; kiosk within 24 h with the password")
def kiosk_reset_auth(ctx: Ctx) -> None:
    _kiosk_reset(ctx, "auth", "sign")


@scenario("kiosk-reset-sign", "sign blocked; kiosk with the auth PIN")
def kiosk_reset_sign(ctx: Ctx) -> None:
    _kiosk_reset(ctx, "sign", "auth")


@scenario("kiosk-expired", "kiosk 24 h + 1 s after the app start: refused, card unchanged")
def kiosk_expired(ctx: Ctx) -> None:
    backend = JlisBackend(ctx.clock)
    block_with_app(ctx, "auth")
    ticket = _start(ctx, backend, "auth")
    ctx.clock.advance(hours=24, seconds=1)
    if ticket is None:
        return
    result = Kiosk(ctx.transport, backend).reset(ticket, ctx.pins["sign"], NEW["auth"])
    ctx.check("kiosk (+24h 1s)", START_AGAIN, result.message)
    ctx.expect_counters("nothing on the card changed", auth="blocked", sign=5, juki=3, helper=3)
    login(ctx, "old PIN still blocked", SHOWN_LOCKED)


@scenario("kiosk-both-blocked", "both JPKI secrets blocked: kiosk refuses, counter re-sets")
def kiosk_both_blocked(ctx: Ctx) -> None:
    backend = JlisBackend(ctx.clock)
    block_with_app(ctx, "auth")
    block_with_app(ctx, "sign")
    ticket = _start(ctx, backend, "auth")
    if ticket is None:
        return
    result = Kiosk(ctx.transport, backend).reset(ticket, ctx.pins["sign"], NEW["auth"])
    ctx.check("kiosk", f"{GO_COUNTER} (the sign secret is blocked)", result.message)
    ctx.expect_counters("kiosk changed nothing", auth="blocked", sign="blocked")
    counter = CounterTerminal(ctx.transport, ctx.clock)
    req = counter.request_reset({"auth": NEW["auth"], "sign": NEW["sign"]}, IdentityCheck())
    ctx.check("counter: re-set both", Status.DONE, req.status)
    ctx.pins.update(auth=NEW["auth"], sign=NEW["sign"])
    login(ctx, "login with the new auth PIN", SHOWN_OK)
    sign(ctx, "sign with the new password", SHOWN_SIGNED)


@scenario(
    "kiosk-ineligible",
    "Juki or input-helper PIN at the kiosk: refused, counter",
    profiles=(STANDARD, FACE_AUTH),
)
def kiosk_ineligible(ctx: Ctx) -> None:
    backend = JlisBackend(ctx.clock)
    block_raw(ctx, "juki")
    for pin in ("juki", "helper"):
        got = ResetApp(ctx.transport, backend).start(pin)
        ctx.check(
            f"app: start {pin} reset",
            f"{GO_COUNTER} (only the JPKI secrets can be re-set here)",
            getattr(got, "message", "request started"),
        )
    req = CounterTerminal(ctx.transport, ctx.clock).request_reset(
        {"juki": NEW["juki"]}, IdentityCheck()
    )
    ctx.check("counter: re-set juki", Status.DONE, req.status)
    ctx.check(
        "juki: new PIN", "9000", sw_of(lambda: JukiSession(ctx.transport).verify(NEW["juki"]))
    )


# --- docs/scenarios.md rule 3: the municipal counter---------------------------------------------


def _pins_of(ctx: Ctx) -> list[str]:
    return list(PINS_OF[Profile(ctx.profile)])


def _verify_new(ctx: Ctx, pin: str) -> str:
    t = ctx.transport
    if pin in ("auth", "sign"):
        shown = (
            MynaportalLogin(t, rng=ctx.rng).login(NEW[pin])
            if pin == "auth"
            else ETaxSigner(t, rng=ctx.rng).sign(NEW[pin], DOCUMENT)
        ).shown
        return "9000" if shown in (SHOWN_OK, SHOWN_SIGNED) else shown
    session = JukiSession if pin == "juki" else TextSession
    return sw_of(lambda: session(t).verify(NEW[pin]))


@scenario(
    "counter-reset-all",
    "all PINs blocked; the counter re-sets each",
    profiles=(STANDARD, FACE_AUTH),
)
def counter_reset_all(ctx: Ctx) -> None:
    names = _pins_of(ctx)
    for pin in names:
        (block_with_app if pin in ("auth", "sign") else block_raw)(ctx, pin)
    ctx.expect_counters("all blocked", **{p: "blocked" for p in names})
    counter = CounterTerminal(ctx.transport, ctx.clock)
    for pin in names:
        req = counter.request_reset({pin: NEW[pin]}, IdentityCheck())
        ctx.check(f"counter: re-set {pin}", Status.DONE, req.status)
    for pin in names:
        ctx.check(f"{pin}: new value works", "9000", _verify_new(ctx, pin))
    ctx.expect_counters("all usable, full tries", **ctx.full_counters())


@scenario(
    "counter-representative",
    "legal representative: re-set only after a second visit",
    profiles=(STANDARD, FACE_AUTH),
)
def counter_representative(ctx: Ctx) -> None:
    block_raw(ctx, "juki")
    counter = CounterTerminal(ctx.transport, ctx.clock)
    rep = IdentityCheck(Who.REPRESENTATIVE)
    req = counter.request_reset({"juki": NEW["juki"]}, rep)
    ctx.check("first visit", Status.PENDING, req.status)
    ctx.expect_counters("still blocked after the first visit", juki="blocked")
    ctx.clock.advance(days=7)
    again = counter.complete(req.number, rep)
    ctx.check("second visit without the inquiry answer", Status.PENDING, again.status)
    done = counter.complete(req.number, IdentityCheck(Who.REPRESENTATIVE, inquiry_answered=True))
    ctx.check("second visit with the inquiry answer", Status.DONE, done.status)
    ctx.check("juki: new PIN", "9000", _verify_new(ctx, "juki"))
    ctx.expect_counters("counters after", **ctx.full_counters())
