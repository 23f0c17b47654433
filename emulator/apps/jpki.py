"""The JPKI application (公的個人認証): two PINs, two RSA keys, their certificates.

Files per docs/card.md#jpki-files; face-authentication cards per
#face-authentication-profile ([model]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.apps.rsa_sign import signing_key
from emulator.commands import fixed_answer, key_ef
from emulator.errors import status
from emulator.files import NOBODY, Application, BinaryEf, Ef, KeyEf, PinEf
from emulator.grammar import SW, TokenInfo
from emulator.grammar.ids import JPKI
from emulator.profiles import FACE_AUTH
from emulator.protocol import HOME, Pin, references_in
from emulator.protocol import Application as App
from emulator.state import CardState

if TYPE_CHECKING:
    from emulator.card import Card
    from emulator.grammar import CommandApdu


TOKEN_LABEL = "JPKIAPICCTOKEN2"
#: 160 bytes (PKCS#11 CK_TOKEN_INFO): the label, flags ``04 0D`` (RNG, login required, user
#: PIN initialised, token initialised) and PIN lengths 6..16 as on a real card [card];
#: manufacturer, model, serial and versions are [model].
TOKEN_FLAGS = 0x040D
TOKEN_INFO = TokenInfo(
    TOKEN_LABEL,
    "myna-hil TEST",
    "virtual card",
    flags=TOKEN_FLAGS,
    max_pin_len=16,
    min_pin_len=6,
    hardware_version=b"\x01\x00",
    firmware_version=b"\x01\x00",
).to_bytes()
#: EF 0009 is sixteen FF [card].
EF_0009 = b"\xff" * 16


def extra_efs() -> list[Ef]:
    """The EFs real cards have beyond the ones clients use [card]: selectable; [model] their
    content is not public, so READ BINARY answers 6982 (0009: sixteen FF, free)."""
    return [
        BinaryEf(fid, EF_0009) if fid == 0x0009 else BinaryEf.opened_by(fid, b"", NOBODY)
        for fid in JPKI.EF_EXTRA
    ]


def build(state: CardState) -> Application:
    pki = state.pki
    face_auth = state.profile == FACE_AUTH
    keys = {"auth": signing_key(pki.auth_key)}
    files: list[Ef] = [
        BinaryEf(JPKI.EF_SIGN_CA_CERT, pki.sign_ca_cert),
        BinaryEf(JPKI.EF_AUTH_CERT, pki.auth_cert),
        BinaryEf(JPKI.EF_AUTH_CA_CERT, pki.auth_ca_cert),
        BinaryEf(JPKI.EF_TOKEN_INFO, TOKEN_INFO),
        *extra_efs(),
    ]
    if face_auth:
        # [model] no signing key, certificate or password; the auth PIN answers 6984 and the
        # auth key is used through face recognition, which this emulator does not model.
        files += [
            BinaryEf(JPKI.EF_CERT_AVAILABILITY, bytes.fromhex("008F00")),
            PinEf.of(HOME[Pin.AUTH], disabled=True),
            KeyEf(JPKI.EF_AUTH_KEY, "auth", None),
        ]
    else:
        assert pki.sign_key is not None and pki.sign_cert is not None
        keys["sign"] = signing_key(pki.sign_key)
        files += [
            BinaryEf.opened_by(JPKI.EF_SIGN_CERT, pki.sign_cert, Pin.SIGN),
            BinaryEf(JPKI.EF_CERT_AVAILABILITY, bytes.fromhex("8F8F00")),
            *(PinEf.of(ref) for ref in references_in(App.JPKI)),
            KeyEf(JPKI.EF_AUTH_KEY, "auth", "auth"),
            KeyEf(JPKI.EF_SIGN_KEY, "sign", "sign"),
        ]

    def compute_digital_signature(card: Card, apdu: CommandApdu) -> bytes:
        """``80 2A P1 P2 Lc data Le``; P2 ``80`` current key EF, ``97``/``9A`` by SFI [client]."""
        if not apdu.data:
            return status(SW.WRONG_LENGTH)
        if apdu.p1 > 0x05:
            return status(SW.INCORRECT_P1P2)
        ef = key_ef(card, apdu.p2)
        # 256 bytes within Ne, else 6C00 [model] (docs/card.md#ne-and-le)
        return fixed_answer(apdu, keys[ef.key].sign(apdu.p1, apdu.data))

    return Application(
        name=App.JPKI,
        aid=JPKI.AID,
        files={ef.fid: ef for ef in files},
        commands={(0x80, JPKI.INS_COMPUTE_DIGITAL_SIGNATURE): compute_digital_signature},
    )
