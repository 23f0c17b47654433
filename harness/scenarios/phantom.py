"""The catalogue, part 2: the face-authentication card (docs/scenarios.md rule 4), phantom
lockouts (rule 5) and a read-only check that is safe on any card."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness.actors.apps import (
    SHOWN_LOCKED,
    SHOWN_NO_PIN_CARD,
    SHOWN_OK,
    SHOWN_REMOVED,
    SHOWN_SIGNED,
    CardInfoApp,
    ETaxSigner,
    Habits,
    MynaportalLogin,
    full_width_digits,
    lowercase,
    trailing_newline,
    wrong_pin,
)
from harness.actors.counter import CounterTerminal, IdentityCheck, Status
from harness.actors.kiosk import NOT_APPLICABLE, JlisBackend, ResetApp
from harness.scenarios.base import FACE_AUTH, STANDARD, Ctx, scenario
from harness.scenarios.catalogue import DOCUMENT, NEW, login, sign, sw_of
from harness.sessions import JpkiSession, JukiSession
from harness.trace.explain import Cause, explain


def causes(ctx: Ctx) -> str:
    """The forensics' verdict on the trace so far: ``"tearing auth, ..."``."""
    found = explain(ctx.transport.records).findings
    return ", ".join(f"{f.cause.name.lower()} {f.pin}" for f in found) or "none"


# --- rule 4 -----------------------------------------------------------------------------


@scenario(
    "face-auth-card",
    "face-auth profile: login, signing, kiosk refused, no tries spent;"
    " the counter makes it a PIN card",
    profiles=(FACE_AUTH,),
    needs_admin=True,
)
def face_auth_card(ctx: Ctx) -> None:
    before = ctx.counters()
    login(ctx, "PIN login", SHOWN_NO_PIN_CARD, pin="1234")
    sign(ctx, "e-Tax signing", SHOWN_NO_PIN_CARD, password="ABC123")
    started = ResetApp(ctx.transport, JlisBackend(ctx.clock)).start("auth")
    ctx.check("kiosk reset request", NOT_APPLICABLE, getattr(started, "message", "started"))
    ctx.check("no tries spent", before, ctx.counters())
    counter = CounterTerminal(ctx.transport, ctx.clock, ctx.admin.change_profile)
    ctx.check(
        "counter: switch to a PIN card",
        "switched to a PIN card",
        counter.switch_to_pin_card(NEW["auth"], NEW["sign"], IdentityCheck()),
    )
    ctx.pins.update(auth=NEW["auth"], sign=NEW["sign"])
    ctx.profile = STANDARD
    login(ctx, "PIN login on the re-issued card", SHOWN_OK)
    sign(ctx, "signing on the re-issued card", SHOWN_SIGNED)
    ctx.expect_counters("counters after", auth=3, sign=5, juki=3, helper=3)


# --- docs/scenarios.md rule 5: phantom lockouts---------------------------------------------


@scenario(
    "phantom-tearing",
    "correct auth PIN, field lost after the decrement, three times",
    needs_admin=True,
    tears=True,
)
def phantom_tearing(ctx: Ctx) -> None:
    for n in (2, 1, 0):
        ctx.admin.tear_after_decrement(1)
        login(ctx, f"login, correct PIN, field lost ({3 - n})", SHOWN_REMOVED)
        ctx.expect_counters(f"auth after tear {3 - n}", auth=n if n else "blocked")
    login(ctx, "login with the correct PIN", SHOWN_LOCKED)
    ctx.check("explained", "tearing auth, tearing auth, tearing auth", causes(ctx))
    counter = CounterTerminal(ctx.transport, ctx.clock)
    req = counter.request_reset({"auth": NEW["auth"]}, IdentityCheck())
    ctx.check("counter re-set overwrites the PIN", Status.DONE, req.status)
    ctx.pins["auth"] = NEW["auth"]
    login(ctx, "login with the new PIN", SHOWN_OK)


@scenario(
    "phantom-app-retry",
    "apps that case-fold, widen digits, add a newline, retry and try other applications",
)
def phantom_app_retry(ctx: Ctx) -> None:
    t, password = ctx.transport, ctx.pins["sign"]
    for n, habit in ((4, lowercase), (3, full_width_digits), (2, trailing_newline)):
        app = ETaxSigner(t, Habits(transform=habit), ctx.rng)
        ctx.check(
            f"signer that applies {habit.__name__}",
            wrong_pin(n),
            app.sign(password, DOCUMENT).shown,
        )
    sign(ctx, "well-behaved signer, same password", SHOWN_SIGNED)
    retrying = MynaportalLogin(t, Habits(auto_retries=1), ctx.rng)
    ctx.check("one mistyped PIN, app retries it", wrong_pin(1), retrying.login("1243").shown)
    login(ctx, "well-behaved login, correct PIN", SHOWN_OK)
    ctx.check(
        "card-info app given the input-helper PIN",
        "read the card information",
        CardInfoApp(t, rng=ctx.rng).read(ctx.pins["helper"]).shown,
    )
    ctx.expect_counters("counters after the apps", auth=2, sign=5, juki=2, helper=3)
    ctx.check(
        "explained",
        "app_transform sign, app_transform sign, app_transform sign, "
        "user_wrong auth, auto_retry auth, other_application auth, "
        "other_application juki",
        causes(ctx),
    )
    login(ctx, "remedy: correct auth PIN restores", SHOWN_OK)
    ctx.check(
        "remedy: correct Juki PIN restores",
        "9000",
        sw_of(lambda: JukiSession(t).verify(ctx.pins["juki"])),
    )
    ctx.expect_counters("counters restored", **ctx.full_counters())


@scenario(
    "phantom-status-quirk",
    "the card answers 9000 to an empty VERIFY after success; an app that shows 'locked' is caught",
    needs_admin=True,
)
def phantom_status_quirk(ctx: Ctx) -> None:
    ctx.admin.set_quirks(status_9000_after_verify=True)
    naive = MynaportalLogin(ctx.transport, Habits(naive_status=True), ctx.rng)
    ctx.check("login", SHOWN_OK, naive.login(ctx.pins["auth"]).shown)
    ctx.check("naive app's status after login", "locked", naive.pin_status().shown)
    good = MynaportalLogin(ctx.transport, rng=ctx.rng)
    ctx.check("login (careful app)", SHOWN_OK, good.login(ctx.pins["auth"]).shown)
    ctx.check("careful app's status after login", "3 tries left", good.pin_status().shown)
    ctx.expect_counters("the card's real counter", auth=3)
    ctx.check("explained", "status_misread auth", causes(ctx))
    found = explain(ctx.transport.records)
    ctx.check("no try was spent", 0, sum(found.decrements.values()))
    ctx.check(
        "cause",
        Cause.STATUS_MISREAD.value,
        found.findings[0].cause.value if found.findings else "none",
    )


# --- non-destructive ----------------------------------------------------------------------


@scenario(
    "card-info",
    "read-only: counters, token info, certificates and their chain",
    profiles=(STANDARD, FACE_AUTH),
    destructive=False,
)
def card_info(ctx: Ctx) -> None:
    ctx.expect_counters("counters (no try spent)", **ctx.full_counters())
    jpki = JpkiSession(ctx.transport)
    ctx.check("token label", "JPKIAPICCTOKEN2", jpki.token_info().label)
    avail = jpki.cert_availability()
    ctx.check("signing certificate present", ctx.profile == STANDARD, avail.sign)
    cert, ca = jpki.certificate("auth"), jpki.certificate("auth-ca")
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    try:
        key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
        chained = "yes"
    except InvalidSignature:
        chained = "no"
    ctx.check("auth certificate chains to its CA", "yes", chained)
    ctx.check(
        "signing certificate without the password",
        "6982" if ctx.profile == STANDARD else "6A82",
        sw_of(lambda: jpki.certificate("sign")),
    )
