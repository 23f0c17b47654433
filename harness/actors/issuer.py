"""[model] Issuer authentication and RESET RETRY COUNTER, shared by the counter and the kiosk.

The terminal asks the card for a challenge, answers it with the TEST issuer key's cryptogram
(``emulator.commands.issuer_cryptogram``; docs/card.md#issuer-reset) and re-sets a PIN.
SELECT clears the issuer authentication, so all three run inside one selected application.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.commands import issuer_cryptogram
from emulator.grammar import CommandApdu
from emulator.protocol import HOME, Pin
from harness.sessions import Session, session_for
from harness.sessions.base import to_bytes
from harness.transport import Transport

INS_GET_CHALLENGE = 0x84
INS_EXTERNAL_AUTHENTICATE = 0x82
INS_RESET_RETRY_COUNTER = 0x2C
P1_NEW_VALUE = 0x02
P1_UNBLOCK = 0x03
CHALLENGE_LENGTH = 8


Cryptogram = Callable[[bytes], bytes]


def reset_pin(
    transport: Transport,
    pin: str,
    new_value: str | None,
    cryptogram: Cryptogram = issuer_cryptogram,
    session: Session | None = None,
) -> None:
    """Authenticate as the issuer and re-set *pin* (``None``: unblock keeping the value).

    Pass *session* to stay in an application already selected (the kiosk, which has just
    verified the other JPKI secret there).
    """
    ref = HOME[Pin(pin)].p2
    s = session if session is not None else session_for(pin, transport)
    challenge = s.call(
        CommandApdu(0x00, INS_GET_CHALLENGE, 0, 0, b"", CHALLENGE_LENGTH), "GET CHALLENGE"
    )
    s.call(
        CommandApdu(0x00, INS_EXTERNAL_AUTHENTICATE, 0, 0, cryptogram(challenge)),
        "EXTERNAL AUTHENTICATE",
    )
    if new_value is None:
        s.call(CommandApdu(0x00, INS_RESET_RETRY_COUNTER, P1_UNBLOCK, ref), f"UNBLOCK {pin}")
    else:
        s.call(
            CommandApdu(0x00, INS_RESET_RETRY_COUNTER, P1_NEW_VALUE, ref, to_bytes(new_value)),
            f"RESET RETRY COUNTER {pin}",
        )
