"""Hex dumps of command APDUs with the secrets taken out.

PINs and passwords travel in the data field of a few commands. Traces and logs must never
carry them (docs/safety.md), but the header, Lc and Le stay useful for debugging, so only the
data field is replaced by ``<redacted N bytes>``. Used by the vpcd server's TRAFFIC log and
the harness's traces.
"""

from __future__ import annotations

from emulator.grammar.apdu import ApduFormatError, CommandApdu

__all__ = ["SECRET_INS", "has_secret_data", "is_secret", "is_secret_command", "redact_command"]

#: Instructions whose data field is (or may be) a PIN or password, whatever the class byte:
#: VERIFY (20, and 21 with BER-TLV data), CHANGE REFERENCE DATA (24, 25), RESET RETRY COUNTER
#: (2C, 2D) and JICSAP CHANGE KEY (32). The class is not consulted: a card may accept a
#: proprietary or secure-messaging class, and a log must not depend on what it accepts.
SECRET_INS = frozenset({0x20, 0x21, 0x24, 0x25, 0x2C, 0x2D, 0x32})


def is_secret(apdu: CommandApdu) -> bool:
    """True when *apdu*'s data field may carry a PIN or password (it has data, INS above)."""
    return bool(apdu.data) and apdu.ins in SECRET_INS


def is_secret_command(raw: bytes) -> bool:
    """True when the command's data field may carry a PIN or password.

    Decided on the header alone, so a malformed command (whose data cannot be located) with a
    secret-bearing INS counts as secret too.
    """
    return len(raw) >= 4 and raw[1] in SECRET_INS


def has_secret_data(raw: bytes) -> bool:
    """True when *raw* has a secret-bearing INS and a data field, by its length alone (a
    command of more than 5 bytes has one): what must not be kept once the command is
    answered. An empty VERIFY (a status query) or a case-2 command has none."""
    return len(raw) > 5 and raw[1] in SECRET_INS


def redact_command(raw: bytes) -> str:
    """Upper-case hex of a command APDU, with any PIN / password data replaced.

    ``00 20 00 80 04 31 32 33 34`` becomes ``"00200080 04 <redacted 4 bytes>"``; a command
    without secrets is returned as plain hex. A secret-bearing command whose length fits no
    ISO case has everything after its header redacted, since the data cannot be located.
    """
    if not is_secret_command(raw):
        return raw.hex().upper()
    header = raw[:4].hex().upper()
    try:
        apdu = CommandApdu.from_bytes(raw)
    except ApduFormatError:
        return f"{header} <redacted {len(raw) - 4} bytes>"
    if not apdu.data:
        return raw.hex().upper()  # no data field: nothing secret (e.g. an empty VERIFY)
    n = len(apdu.data)
    lc = (b"\x00" + n.to_bytes(2, "big")) if apdu.extended else bytes((n,))
    le = raw[4 + len(lc) + n :]
    text = f"{header} {lc.hex().upper()} <redacted {n} bytes>"
    return f"{text} {le.hex().upper()}" if le else text
