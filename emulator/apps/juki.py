"""The Juki (住基, residence registry) application and the common AP (共通カードAP).

Reference: docs/card.md#juki-and-common-ap. The common AP holds its own 4-digit PIN at
``001C``, a reference separate from the Juki AP's (soltia48/myna-card ``src/ap/common.rs``
records that they are verified and changed separately [card]); a record file ``0001`` whose
record 1 is the card info (simple-TLV ``01 1C`` + serial(15) municipality(5) expiry
YYYYMMDD [card]); and ``0019``, a key that answers INTERNAL AUTHENTICATE with no credential
[card] (here a published TEST key, [model]).
"""

from __future__ import annotations

import emulator.apps.cvc as cvc
from emulator.commands import jicsap_change_key
from emulator.files import Application, AuthKeyEf, Ef, Handler, PinEf, RecordEf
from emulator.grammar.ids import JUKI
from emulator.identity import TEST_MUNICIPALITY, card_serial
from emulator.protocol import Application as App
from emulator.protocol import references_in
from emulator.state import CardState


def card_info_record(state: CardState) -> bytes:
    """Record 1 of common AP EF 0001: ``01 1C`` + 28 ASCII digits [card]."""
    digits = (
        card_serial(state.pki.auth_cert).encode("ascii")
        + TEST_MUNICIPALITY
        + state.holder.expiry.encode("ascii")
    )
    return bytes((JUKI.TAG_CARD_INFO, len(digits))) + digits


def internal_authenticate_key(challenge: bytes) -> bytes:
    """sha256WithRSAEncryption over the challenge (PKCS#1 v1.5 DigestInfo) [card]."""
    return cvc.sign(cvc.load_key(cvc.TEST_COMMON_AP_KEY_PEM), challenge)


def build(state: CardState) -> list[Application]:
    commands: dict[tuple[int, int], Handler] = {
        (0x80, JUKI.INS_JICSAP_CHANGE_KEY): jicsap_change_key
    }
    juki_files: dict[int, Ef] = {ref.ef: PinEf.of(ref) for ref in references_in(App.JUKI)}
    common: list[Ef] = [
        *(PinEf.of(ref) for ref in references_in(App.COMMON) if ref.pin in state.pins),
        AuthKeyEf(JUKI.EF_INTERNAL_AUTH_KEY, internal_authenticate_key),
    ]
    if state.holder.expiry:  # a card issued before expiry dates were modelled has no record
        common.append(RecordEf(JUKI.EF_CARD_INFO, (card_info_record(state),)))
    return [
        Application(App.JUKI, JUKI.AID, juki_files, commands),
        Application(App.COMMON, JUKI.COMMON_AID, {ef.fid: ef for ef in common}, commands),
    ]
