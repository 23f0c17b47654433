"""Card profiles and answer-to-reset forms.

Reference: docs/card.md#answer-to-reset and #face-authentication-profile.
"""

from __future__ import annotations

from emulator.protocol import Profile

STANDARD = Profile.STANDARD
FACE_AUTH = Profile.FACE_AUTH
PROFILES = tuple(Profile)

#: ATR forms seen on real cards. The contactless ones are what a PC/SC part-3 reader builds
#: from the card's ATQB; ``legacy-juki`` is the older Juki card OpenSC matches by ATR.
ATRS: dict[str, bytes] = {
    "contact": bytes.fromhex("3BDA13FF8131FB468012392F31C173C601C03B"),
    "contact-short": bytes.fromhex("3BC5FF8131FB458073C6010000"),
    "contactless": bytes.fromhex("3B888001000005E0B381A1007F"),
    "contactless-alt": bytes.fromhex("3B88800100 4B51FF0081D100BC".replace(" ", "")),
    "legacy-juki": bytes.fromhex("3BE000FF8131FE4514"),
}
DEFAULT_ATR_FORM = "contact"


def contact_atr(form: str) -> bytes:
    """The contact ATR GET DATA ``5F51`` reports: this form's, or the default contact one."""
    return ATRS[form] if form.startswith("contact-") or form == "contact" else ATRS["contact"]
