"""The card-surface application (券面事項確認AP, "visual AP").

[model] Selectable. Its data EFs (face image, printed text) are protected by the My Number
or the birth-date/expiry/security-code check values, which this emulator does not model:
selecting any of its EFs answers 6A82.
"""

from __future__ import annotations

from emulator.files import Application
from emulator.state import CardState

AID = bytes.fromhex("D3921000310001010402")


def build(state: CardState) -> Application:
    return Application("surface", AID, {})
