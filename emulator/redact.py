"""Hex dumps of command APDUs with the secrets taken out.

PINs and passwords travel in the data field of a few commands. Traces and logs must never
carry them (docs/safety.md), but the header, Lc and Le stay useful for debugging, so only the
data field is replaced by ``<redacted N bytes>``. Used by the vpcd server's TRAFFIC log and
the harness's traces.
"""

from __future__ import annotations

__all__ = ["is_secret_command", "redact_command"]

#: Instructions whose data field is (or may be) a PIN or password, whatever the class byte:
#: VERIFY (20, and 21 with BER-TLV data), CHANGE REFERENCE DATA (24, 25), RESET RETRY COUNTER
#: (2C, 2D) and JICSAP CHANGE KEY (32). The class is not consulted: a card may accept a
#: proprietary or secure-messaging class, and a log must not depend on what it accepts.
SECRET_INS = frozenset({0x20, 0x21, 0x24, 0x25, 0x2C, 0x2D, 0x32})


def is_secret_command(apdu: bytes) -> bool:
    """True when the command's data field may carry a PIN or password."""
    return len(apdu) >= 4 and apdu[1] in SECRET_INS


def _split_lc(body: bytes) -> tuple[bytes, int, bytes] | None:
    """Split the bytes after the header into (Lc field, data length, Le field).

    Returns None for a case 1 or case 2 command (no data) and for a body that fits no
    ISO 7816-4 case (then the caller redacts all of it).
    """
    n = len(body)
    if n == 0 or n == 1:
        return None  # case 1, case 2 short
    if body[0] != 0:
        lc = body[0]
        if n == 1 + lc:
            return body[:1], lc, b""  # case 3 short
        if n == 2 + lc:
            return body[:1], lc, body[-1:]  # case 4 short
        raise ValueError("malformed")
    if n == 3:
        return None  # case 2 extended
    lc = int.from_bytes(body[1:3], "big")
    if lc and n == 3 + lc:
        return body[:3], lc, b""  # case 3 extended
    if lc and n == 5 + lc:
        return body[:3], lc, body[-2:]  # case 4 extended
    raise ValueError("malformed")


def redact_command(apdu: bytes) -> str:
    """Upper-case hex of a command APDU, with any PIN / password data replaced.

    ``00 20 00 80 04 31 32 33 34`` becomes ``"00200080 04 <redacted 4 bytes>"``; a command
    without secrets is returned as plain hex. A secret-bearing command whose length fits no
    ISO case has everything after its header redacted, since the data cannot be located.
    """
    if not is_secret_command(apdu):
        return apdu.hex().upper()
    header, body = apdu[:4], apdu[4:]
    try:
        split = _split_lc(body)
    except ValueError:
        return f"{header.hex().upper()} <redacted {len(body)} bytes>"
    if split is None:
        return apdu.hex().upper()  # no data field: nothing secret (e.g. an empty VERIFY)
    lc_field, n_data, le_field = split
    text = f"{header.hex().upper()} {lc_field.hex().upper()} <redacted {n_data} bytes>"
    if le_field:
        text += f" {le_field.hex().upper()}"
    return text
