"""Client sessions over the in-process transport: status without spending, verify, read, sign."""

from __future__ import annotations

import dataclasses

import pytest

from emulator.apps.images import JP2_SIGNATURE, PNG_SIGNATURE
from emulator.card import Card
from emulator.files import BinaryEf
from emulator.grammar.ids import TEXT
from emulator.identity import check_number_a, check_number_b
from harness.actors.apps import SHOWN_CHECK_LOCKED, SHOWN_IDENTITY_OK, IdentityVerificationApp
from harness.errors import NoSuchFileError, PinBlockedError, SecurityStatusError, WrongPinError
from harness.inprocess import InProcessTransport
from harness.sessions import CommonSession, JpkiSession, JukiSession, SurfaceSession, TextSession
from harness.sessions.jpki import verify_signature
from tests.support.cards import fresh_card

TEXT_AID = TEXT.AID


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
    with pytest.raises(WrongPinError):  # the common AP's 001C is its own reference [card]
        JukiSession(t, common=True).verify("7777")
    JukiSession(t, common=True).verify("3456")


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
        h.name,
        h.address,
        h.birth_date,
        h.sex,
    )


def test_face_auth_card_statuses() -> None:
    t = InProcessTransport(fresh_card(profile="face-auth"))
    s = JpkiSession(t)
    assert not s.pin_status("auth").usable
    with pytest.raises(NoSuchFileError):
        s.pin_status("sign")
    assert not s.cert_availability().sign
    SurfaceSession(t)  # selectable


def test_text_session_reads_with_check_numbers_and_checks_integrity(
    card: Card, t: InProcessTransport
) -> None:
    holder = card.state.holder
    s = TextSession(t)
    assert s.pin_status("text-b").describe() == "10/10 tries"
    with pytest.raises(WrongPinError) as exc:
        s.verify_check_number(
            "B", "0" * 14 if not check_number_b(holder).startswith("0") else "1" * 14
        )
    assert exc.value.tries_left == 9
    s.verify_check_number("B", check_number_b(holder))
    assert s.basic_four().name == holder.name
    with pytest.raises(SecurityStatusError):
        s.my_number()  # B does not open EF 0001 [card]
    assert s.integrity(with_my_number=False).ok
    s.verify_check_number("A", check_number_a(holder))
    integrity = s.integrity()
    assert integrity.ok and integrity.my_number_ok
    assert card.pin_record("helper").tries_left == 3  # the PIN was never involved


def test_integrity_fails_on_a_tampered_record(card: Card, t: InProcessTransport) -> None:
    text_ap = card.applications[TEXT_AID]
    record = text_ap.files[0x0003]
    assert isinstance(record, BinaryEf)
    tampered = record.content[:10] + bytes([record.content[10] ^ 1]) + record.content[11:]
    text_ap.files[0x0003] = dataclasses.replace(record, content=tampered)
    s = TextSession(t)
    s.verify("2345")
    integrity = s.integrity()
    assert not integrity.ok and not integrity.my_number_ok and not integrity.signature_ok


def test_surface_session_reads_the_card_face(card: Card, t: InProcessTransport) -> None:
    holder = card.state.holder
    s = SurfaceSession(t)
    assert s.pin_status("surface-a").max_tries == 10
    s.verify_check_number("B", check_number_b(holder))
    face = s.card_face()
    assert (face.birth_date, face.sex, face.expiry) == (
        holder.birth_date,
        holder.sex,
        holder.expiry,
    )
    assert face.name_image.startswith(PNG_SIGNATURE) and face.photo.startswith(JP2_SIGNATURE)
    assert s.birth_date() == holder.birth_date
    with pytest.raises(SecurityStatusError):
        s.my_number_image()  # A only [card]
    s.verify_check_number("A", check_number_a(holder))
    assert s.my_number_image().startswith(PNG_SIGNATURE)
    assert s.ap_info()[0xDF34] == b"99999"


def test_identity_app_outcomes(card: Card, t: InProcessTransport) -> None:
    holder = card.state.holder
    app = IdentityVerificationApp(t)
    assert app.check(check_number_b(holder)).shown == SHOWN_IDENTITY_OK
    assert app.check("123").shown.startswith("card error")  # 6700: wrong length, no try
    assert card.pin_record("text-b").tries_left == 10
    card.block("text-b")
    assert app.check(check_number_b(holder)).shown == SHOWN_CHECK_LOCKED


def test_common_session(card: Card, t: InProcessTransport) -> None:
    s = CommonSession(t)
    info = s.card_info()
    assert (info.municipality, info.expiry) == ("99999", card.state.holder.expiry)
    assert len(info.serial) == 15 and info.serial.isdigit()
    assert len(s.internal_authenticate(b"\x01" * 16)) == 256
    assert s.pin_status().name == "common" and s.pin_status().tries_left == 3
    s.verify("3456")
    s.change("4321")
    s.verify("4321")
    JukiSession(t).verify("3456")  # the Juki AP's reference is another one [card]
