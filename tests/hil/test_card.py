"""Non-destructive: what may run on anybody's card.

ATR, identity, the four counters by empty VERIFY, the free files and certificates; and, only
when the owner gives the auth PIN ($MYNA_AUTH_PIN or --prompt-pin), one VERIFY and one
signature checked against the card's certificate.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.errors import NoSuchFileError, SecurityStatusError
from harness.hil.session import HilCard, Secret
from harness.sessions import JpkiSession, JukiSession, TextSession
from harness.sessions.base import PinStatus

pytestmark = pytest.mark.hil


def test_atr_and_identity(hil: HilCard) -> None:
    assert hil.wire.atr[:1] in (b"\x3b", b"\x3f"), hil.wire.atr.hex()
    assert hil.identity is not None and hil.identity.card_id


def test_four_counters_without_spending_a_try(hil: HilCard) -> None:
    t = hil.transport
    found: dict[str, PinStatus | None] = {}
    for name in ("auth", "sign"):
        try:
            found[name] = JpkiSession(t).pin_status(name)
        except NoSuchFileError:
            found[name] = None  # face-auth / under-15 card: no signing password
    found["juki"] = JukiSession(t).pin_status()
    found["helper"] = TextSession(t).pin_status()
    assert found["auth"] is not None and found["juki"] is not None
    for st in found.values():
        assert st is None or st.tries_left is None or 0 <= st.tries_left <= st.max_tries


def test_free_files_parse(hil: HilCard) -> None:
    jpki = JpkiSession(hil.transport)
    assert jpki.token_info().label == "JPKIAPICCTOKEN2"
    avail = jpki.cert_availability()
    assert avail.auth
    cert, ca = jpki.certificate("auth"), jpki.certificate("auth-ca")
    cert.verify_directly_issued_by(ca)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert format(cert.serial_number, "X") == (hil.identity.card_id if hil.identity else "")
    if avail.sign:
        jpki.certificate("sign-ca")


def test_signing_certificate_is_protected(hil: HilCard) -> None:
    jpki = JpkiSession(hil.transport)
    if not jpki.cert_availability().sign:
        pytest.skip("no signing certificate on this card (face-auth / under 15)")
    with pytest.raises(SecurityStatusError):
        jpki.certificate("sign")


def test_owner_pin_verifies_once_and_signs(hil: HilCard, auth_pin: Secret | None) -> None:
    if auth_pin is None:
        pytest.skip("no auth PIN given (set MYNA_AUTH_PIN or pass --prompt-pin)")
    assert hil.owner_pin_check(auth_pin) == "signature verifies with the auth certificate"
