"""The card-surface application (券面事項確認AP, "visual AP").

[model] Selectable, with the EFs clients know of. Its data EFs (birth date, printed entries
with the face image, My Number) open only after the My Number (check value A) or the birth
date + expiry year + security code (check value B) has been verified; this emulator does not
model those check values, so reading them always answers 6982.
"""

from __future__ import annotations

from emulator.files import Application, BinaryEf, Ef
from emulator.grammar.ids import SURFACE
from emulator.state import CardState

#: A PIN name no card state holds: the check values are not modelled (see module doc).
CHECK_VALUE = "surface-check-value"


def build(state: CardState) -> Application:
    files: list[Ef] = [
        BinaryEf(SURFACE.EF_BIRTH, state.holder.birth_date.encode(), read_pin=CHECK_VALUE),
        BinaryEf(SURFACE.EF_ENTRIES, b"", read_pin=CHECK_VALUE),
        BinaryEf(SURFACE.EF_MY_NUMBER, state.holder.my_number.encode(), read_pin=CHECK_VALUE),
    ]
    return Application("surface", SURFACE.AID, {ef.fid: ef for ef in files})
