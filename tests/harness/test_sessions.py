"""Client sessions over the in-process transport: status without spending, verify, read, sign."""

from __future__ import annotations

import pytest

from emulator.card import Card
from harness.errors import NoSuchFileError, PinBlockedError, SecurityStatusError, WrongPinError
from harness.inprocess import InProcessTransport
from harness.sessions import JpkiSession, JukiSession, SurfaceSession, TextSession
from harness.sessions.jpki import verify_signature
from tests.support.cards import fresh_card


@pytest.fixture
def t(card: Card) -> InProcessTransport:
    return InProcessTransport(card)


def test_pin_status_never_spends_a_try(card: Card, t: InProcessTransport) -> None:
    card.set_tries("auth", 2)
    for _ in range(5):
        st = JpkiSession(t).pin_status("auth")
    assert (st.tries_left, st.max_tries, st.blocked) == (2, 3, False)
    assert card.pin_record("auth").tries_left == 2
    assert JpkiSession(t).pin_status("sign").max_tries == 5
    card.block("juki")
    assert JukiSession(t).pin_status().blocked
    assert TextSession(t).pin_status().describe() == "3/3 tries"


def test_status_quirk_reads_as_verified_not_locked(card: Card, t: InProcessTransport) -> None:
    card.set_quirks(status_9000_after_verify=True)
    s = JpkiSession(t)
    s.verify("auth", "1234")
    st = s.pin_status("auth")
    assert st.verified and not st.blocked and st.tries_left is None
    assert st.describe().startswith("verified")


def test_verify_wrong_then_blocked(t: InProcessTransport) -> None:
    s = TextSession(t)
    with pytest.raises(WrongPinError) as e:
        s.verify("0000")
    assert e.value.tries_left == 2
    for _ in range(2):
        with pytest.raises(WrongPinError):
            s.verify("0000")
    with pytest.raises(PinBlockedError):
        s.verify("2345")


def test_change_needs_verify_and_then_works(t: InProcessTransport) -> None:
    s = JpkiSession(t)
    with pytest.raises(SecurityStatusError):
        s.change("auth", "1111")
    s.verify("auth", "1234")
    s.change("auth", "1111")
    s.verify("auth", "1111")
    j = JukiSession(t)
    j.verify("3456")
    j.change("7777")
    JukiSession(t, common=True).verify("7777")  # one PIN, shared with the common AP


def test_certificates_and_signatures(t: InProcessTransport) -> None:
    s = JpkiSession(t)
    cert = s.certificate("auth")
    assert cert.issuer == s.certificate("auth-ca").subject
    with pytest.raises(SecurityStatusError):
        s.sign_message("auth", b"x")
    s.verify("auth", "1234")
    assert verify_signature(cert, b"challenge", s.sign_message("auth", b"challenge"))
    assert not verify_signature(cert, b"other", s.sign_message("auth", b"challenge"))
    with pytest.raises(SecurityStatusError):
        s.certificate("sign")
    s.verify("sign", "ABC123")
    assert s.certificate("sign").issuer == s.certificate("sign-ca").subject
    assert s.token_info().label == "JPKIAPICCTOKEN2"
    assert s.cert_availability().sign


def test_text_ap_data_parsed_with_the_tlv_grammar(card: Card, t: InProcessTransport) -> None:
    s = TextSession(t)
    s.verify("2345")
    assert s.my_number() == card.state.holder.my_number
    four = s.basic_four()
    h = card.state.holder
    assert (four.name, four.address, four.birth_date, four.sex) == (
        h.name, h.address, h.birth_date, h.sex)


def test_face_auth_card_statuses() -> None:
    t = InProcessTransport(fresh_card(profile="face-auth"))
    s = JpkiSession(t)
    assert not s.pin_status("auth").usable
    with pytest.raises(NoSuchFileError):
        s.pin_status("sign")
    assert not s.cert_availability().sign
    SurfaceSession(t)  # selectable
