"""Which card is in the reader: its identity, from free data only.

The identity is the serial number of the JPKI authentication certificate (EF ``000A``, free
to read on every My Number card), in upper-case hex as ``myna-hil status`` prints it. A card
that has no JPKI application, or no certificate there that parses and chains to the CA
certificate beside it (EF ``000B``), is not a My Number card: the run stops.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from emulator.grammar import SW
from harness.errors import ApduError, NoSuchFileError
from harness.sessions.base import CHUNK
from harness.sessions.jpki import JpkiSession
from harness.transport import Transport

__all__ = ["CardIdentity", "NotAMyNumberCardError", "identify"]


class NotAMyNumberCardError(Exception):
    """The card answers, but not as a My Number card (the message says what was found)."""


@dataclass(frozen=True)
class CardIdentity:
    """The card as identified from free data; ``card_id`` is the opt-in name."""

    card_id: str
    atr: bytes
    issuer: str
    not_after: str

    def describe(self) -> str:
        return (
            f"card ID {self.card_id} (auth certificate serial; issuer {self.issuer}, "
            f"valid until {self.not_after})"
        )


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def _read_der(jpki: JpkiSession, fid: int) -> bytes:
    """EF *fid* as a DER object, every read bounded (a card answering 9000 with no data --
    an echo card -- must not keep the loop going)."""
    jpki.select_ef(fid)
    head, sw = jpki.read_binary(0, 4)
    if sw != SW.OK or len(head) != 4 or head[:2] != b"\x30\x82":
        raise ApduError(sw, b"", f"READ BINARY EF {fid:04X}: no DER header (30 82 LL LL)")
    size = int.from_bytes(head[2:], "big")
    out = bytearray(head)
    while len(out) < size + 4:
        data, sw = jpki.read_binary(len(out), min(CHUNK, size + 4 - len(out)))
        if sw not in (SW.OK, SW.END_OF_FILE) or not data:
            raise ApduError(sw, b"", f"READ BINARY EF {fid:04X}: short certificate")
        out += data
    return bytes(out)


def _certificate(jpki: JpkiSession, which: str, fid: int) -> x509.Certificate:
    try:
        raw = _read_der(jpki, fid)
    except NoSuchFileError:
        raise NotAMyNumberCardError(f"no EF {fid:04X} ({which} certificate) in JPKI") from None
    except ApduError as exc:
        raise NotAMyNumberCardError(f"EF {fid:04X} holds no {which} certificate ({exc})") from None
    try:
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise NotAMyNumberCardError(
            f"EF {fid:04X} does not hold a valid X.509 {which} certificate"
        ) from None


def identify(transport: Transport) -> CardIdentity:
    """Read the card's identity: SELECT JPKI, read EF 000A and 000B, check the chain.

    Sends only SELECT and READ BINARY. Raises :class:`NotAMyNumberCardError` with what was
    found; transport errors pass through.
    """
    atr = transport.atr.hex(" ").upper()
    try:
        jpki = JpkiSession(transport)
    except ApduError as exc:
        raise NotAMyNumberCardError(
            f"not a My Number card (ATR {atr}): SELECT JPKI answered {exc.sw:04X}"
        ) from None
    try:
        cert = _certificate(jpki, "authentication", 0x000A)
        ca = _certificate(jpki, "authentication CA", 0x000B)
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            raise NotAMyNumberCardError(
                "the authentication certificate (EF 000A) is not issued by the CA "
                "certificate beside it (EF 000B)"
            ) from None
    except NotAMyNumberCardError as exc:
        raise NotAMyNumberCardError(f"not a My Number card (ATR {atr}): {exc}") from None
    return CardIdentity(
        card_id=format(cert.serial_number, "X"),
        atr=transport.atr,
        issuer=_cn(cert.issuer),
        not_after=cert.not_valid_after_utc.date().isoformat(),
    )
