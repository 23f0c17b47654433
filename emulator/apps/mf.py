"""The master file level: GET DATA objects with no application selected, and the issuer
security domain (docs/card.md#mf-level).

A real card answers GET DATA with its identification number, the issuing municipality, the
expiry date and a chain of card-verifiable certificates only while no application is selected
(after power-on) [card]. Which tags carry them is not public: [model] the ISO 7816-6
interindustry tags below. No EF under the MF is readable [card].
"""

from __future__ import annotations

import emulator.apps.cvc as cvc
from emulator.files import Application
from emulator.grammar.ids import ISD
from emulator.identity import TEST_MUNICIPALITY, card_serial
from emulator.protocol import Application as App
from emulator.state import CardState

TAG_CARD_NUMBER = 0x005A  # [model] ISO 7816-6 '5A': the card identification number
TAG_ISSUER = 0x0042  # [model] '42' issuer identification: the municipality code
TAG_EXPIRY = 0x5F24  # [model] '5F24' expiry date, YYMMDD as ISO 7816-6 writes it
TAG_CVC_CHAIN = 0x00F8  # the CV certificate chain [card]: the APs' 7F21 certificates


def objects(state: CardState) -> dict[int, bytes]:
    """GET DATA objects at MF level, by P1P2."""
    found = {
        TAG_CARD_NUMBER: card_serial(state.pki.auth_cert).encode("ascii"),
        TAG_ISSUER: TEST_MUNICIPALITY,
        TAG_CVC_CHAIN: cvc.certificate(cvc.TEST_TEXT_AP_KEY_PEM)
        + cvc.certificate(cvc.TEST_SURFACE_AP_KEY_PEM),
    }
    if state.holder.expiry:
        found[TAG_EXPIRY] = state.holder.expiry[2:].encode("ascii")
    return found


def issuer_security_domain() -> Application:
    """Selectable [card]; nothing in it is modelled (no EF, no command of its own)."""
    return Application(App.ISD, ISD.AID, {})
