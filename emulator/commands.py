"""The interindustry commands (ISO 7816-4) as the My Number Card implements them.

Each handler takes the card and a parsed command and returns the whole response: data + SW,
or a status word alone (:func:`status`) for a refusal, which is an ordinary answer and costs
no exception. The addressing helpers below raise ``SwError`` (the dispatcher answers it).
Facts tagged [card]/[client] follow ``docs/card.md``; [model] marks behaviour that is not
public and is this project's choice.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING

from emulator import pins
from emulator.errors import PowerLost, SwError, status
from emulator.files import AuthKeyEf, BinaryEf, Ef, KeyEf, PinEf, RecordEf
from emulator.grammar import SW, CommandApdu, verify_failed
from emulator.profiles import contact_atr

if TYPE_CHECKING:
    from emulator.card import Card

OK = b"\x90\x00"

#: [model] The issuer key of the municipal-counter procedure. A TEST key, published on
#: purpose: real cards use J-LIS keys this project has never seen.
TEST_ISSUER_KEY = hashlib.sha256(b"myna-hil TEST issuer key - not a production secret").digest()
CHALLENGE_LENGTH = 8
#: GET CHALLENGE answers Le 1..256 bytes [card].
MAX_CHALLENGE_LENGTH = 256
CRYPTOGRAM_LENGTH = 16


def issuer_cryptogram(challenge: bytes, key: bytes = TEST_ISSUER_KEY) -> bytes:
    """[model] EXTERNAL AUTHENTICATE data: HMAC-SHA-256(key, challenge), first 16 bytes."""
    return hmac.new(key, challenge, hashlib.sha256).digest()[:CRYPTOGRAM_LENGTH]


# --- Ne (the Le field) ---------------------------------------------------------------------


def wrong_le(available: int) -> int:
    """``6Cxx``: wrong Le, SW2 the exact number of bytes available (``00`` for 256)."""
    return 0x6C00 | (available & 0xFF)


def fixed_answer(apdu: CommandApdu, data: bytes) -> bytes:
    """An answer of fixed size within Ne (absent Le: Ne = 0): *data* + ``9000``, or
    ``6Cxx`` with no data when Ne is smaller [model] (ISO 7816-4 "wrong Le field; SW2
    encodes the exact number of available data bytes"; docs/card.md#ne-and-le)."""
    if (apdu.le or 0) < len(data):
        raise SwError(wrong_le(len(data)))
    return data + OK


# --- addressing -------------------------------------------------------------------------------


def _current_app(card: Card) -> None:
    if card.session.app is None:
        raise SwError(SW.FILE_NOT_FOUND)  # nothing is selected after power-on [card]


def _reference(card: Card, p2: int) -> Ef:
    """The EF that P2 names: ``80`` the current EF, ``80 | SFI`` by short identifier."""
    if p2 & 0xE0 != 0x80:
        raise SwError(SW.INCORRECT_P1P2)
    sfi = p2 & 0x1F
    session = card.session
    if sfi == 0:
        ef = session.ef
        if ef is None:
            raise SwError(SW.COMMAND_NOT_ALLOWED_NO_EF)
        return ef
    if session.app is None:
        raise SwError(SW.FILE_NOT_FOUND)  # nothing is selected after power-on [card]
    ef = session.app.files.get(sfi)  # by_sfi: a short identifier is the FID's low bits
    if ef is None:
        raise SwError(SW.REFERENCE_DATA_NOT_FOUND)  # [model]
    return ef


def _pin_ef(card: Card, p2: int) -> PinEf:
    ef = _reference(card, p2)
    if not isinstance(ef, PinEf):
        raise SwError(SW.COMMAND_NOT_ALLOWED_NO_EF)  # [model] not reference data
    return ef


def _check_usable(card: Card, ef: PinEf) -> None:
    """Permanently blocked or disabled references, and absent PINs, answer 6984."""
    if ef.disabled or ef.pin is None or ef.pin not in card.state.pins:
        raise SwError(SW.REFERENCE_DATA_NOT_USABLE)


# --- SELECT ------------------------------------------------------------------------------------


def select(card: Card, apdu: CommandApdu) -> bytes:
    """SELECT by DF name (P1 04) or by FID (P1 00 / 02). No FCI is returned [model]."""
    p1, p2, data = apdu.p1, apdu.p2, apdu.data
    if p2 not in (0x00, 0x0C):
        return status(SW.INCORRECT_P1P2)
    session = card.session
    if p1 == 0x02 or (p1 == 0x00 and (data or apdu.le)):
        if len(data) != 2:
            return status(SW.WRONG_LENGTH)
        app = session.app
        ef = app.files.get(data[0] << 8 | data[1]) if app is not None else None
        if ef is None:
            return status(SW.FILE_NOT_FOUND)  # includes 3F00 [card]
        session.ef = ef
        return OK
    if p1 == 0x04:
        app = card.applications.get(data)
        if app is None:
            return status(SW.FILE_NOT_FOUND)
        # Selecting an application clears its security state [client]. Whether re-selecting
        # the *same* application does is not public: a quirk keeps the verified PINs [model].
        same = session.app is not None and session.app.aid == app.aid
        session.app = app
        session.ef = None
        if not (same and card.state.quirks.reselect_keeps_verification):
            session.verified.clear()
        session.issuer_authenticated = False
        session.challenge = None
        return OK
    if p1 == 0x00:
        # 00 A4 00 00 (select the MF): 6A86 right after reset, 9000 without any change
        # inside an application [card].
        return status(SW.INCORRECT_P1P2) if session.app is None else OK
    return status(SW.INCORRECT_P1P2)


# --- VERIFY and the retry counter -----------------------------------------------------------


#: The ``63Cx`` answers by tries left, made once (a status query is the command clients send
#: most; ``verify_failed`` checks its range on every call).
_VERIFY_FAILED = tuple(status(verify_failed(tries)) for tries in range(16))


def verify(card: Card, apdu: CommandApdu) -> bytes:
    """VERIFY: empty data queries the counter; with data the counter is spent first.

    Its ordinary answers (``63Cx``, ``6984``, ``6700``) are returned, not raised: a status
    query is the command clients send most."""
    if apdu.p1 != 0x00:
        return status(SW.INCORRECT_P1P2)
    ef = _reference(card, apdu.p2)
    if not isinstance(ef, PinEf):
        return status(SW.COMMAND_NOT_ALLOWED_NO_EF)  # as _pin_ef
    name = ef.pin
    if name is None and not ef.disabled:
        # Text AP 0012, blocked on every card examined [card].
        return status(SW.VERIFY_FAILED if not apdu.data else SW.REFERENCE_DATA_NOT_USABLE)
    if ef.disabled or name is None or name not in card.state.pins:
        return status(SW.REFERENCE_DATA_NOT_USABLE)  # as _check_usable
    data = apdu.data
    if not data:
        if card.state.quirks.status_9000_after_verify and name in card.session.verified:
            return OK  # the quirk some cards show [card]; off by default
        return _VERIFY_FAILED[card.read_pin(name).tries_left]
    if not pins.SPECS[name].length_ok(data):
        # [model] no try spent for an impossible length; a blocked PIN still says so first
        if card.read_pin(name).blocked:
            return status(SW.REFERENCE_DATA_NOT_USABLE)
        return status(SW.WRONG_LENGTH)
    # Decrement before compare, durable before the comparison (anti-tearing) [card]. The
    # record compared is the one the decrement read, inside the same transaction.
    record = card.update_pin(name, pins.spend_try(SwError(SW.REFERENCE_DATA_NOT_USABLE)))
    if card.faults.tear_after_decrement:
        card.faults.tear_after_decrement -= 1
        card.power_off()
        raise PowerLost("power lost after the counter decrement")
    if pins.matches(record, data):
        # [model] re-set by another process between decrement and compare: not this value
        changed = SwError(verify_failed(record.tries_left))
        card.update_pin(name, pins.restore_tries(record.digest, changed))
        card.session.verified.add(name)
        return OK
    card.session.verified.discard(name)
    return _VERIFY_FAILED[record.tries_left]


def _change(card: Card, apdu: CommandApdu, family: str) -> bytes:
    ef = _pin_ef(card, apdu.p2)
    if ef.change != family:
        return status(SW.COMMAND_NOT_ALLOWED_NO_EF)  # [model] the other INS family
    _check_usable(card, ef)
    assert ef.pin is not None
    if ef.pin not in card.session.verified:
        return status(SW.SECURITY_STATUS_NOT_SATISFIED)
    if pins.SPECS[ef.pin].violation(apdu.data):
        return status(SW.INCORRECT_DATA)  # [model]
    card.update_pin(ef.pin, pins.new_value(apdu.data))
    return OK


def change_reference_data(card: Card, apdu: CommandApdu) -> bytes:
    """CHANGE REFERENCE DATA ``00 24 01 P2 Lc new``, after VERIFY of the old value [client]."""
    if apdu.p1 != 0x01:
        return status(SW.INCORRECT_P1P2)  # [model] P1 00 (old + new) is not used by clients
    return _change(card, apdu, "iso")


def jicsap_change_key(card: Card, apdu: CommandApdu) -> bytes:
    """JICSAP CHANGE KEY ``80 32 00 P2 Lc new`` for the Juki PIN [card]."""
    if apdu.p1 != 0x00:
        return status(SW.INCORRECT_P1P2)
    return _change(card, apdu, "jicsap")


# --- READ BINARY and GET DATA ---------------------------------------------------------------


def read_binary(card: Card, apdu: CommandApdu) -> bytes:
    """READ BINARY by current EF (15-bit offset) or by SFI (P1 = 80|SFI, P2 = offset)."""
    if apdu.p1 & 0x80:
        if apdu.p1 & 0x60:
            return status(SW.INCORRECT_P1P2)
        _current_app(card)
        assert card.session.app is not None
        ef = card.session.app.by_sfi(apdu.p1 & 0x1F)
        if ef is None:
            return status(SW.FILE_NOT_FOUND)
        card.session.ef = ef  # an SFI reference makes the EF current (ISO 7816-4)
        offset = apdu.p2
    else:
        ef = card.session.ef
        if ef is None:
            return status(SW.COMMAND_NOT_ALLOWED_NO_EF)
        offset = apdu.p1 << 8 | apdu.p2
    if not isinstance(ef, BinaryEf):
        return status(SW.COMMAND_NOT_ALLOWED_NO_EF)  # [model] PIN and key EFs are not readable
    if apdu.le is None or apdu.data:
        return status(SW.WRONG_LENGTH)
    if ef.read_pins and ef.read_pins.isdisjoint(card.session.verified):
        return status(SW.SECURITY_STATUS_NOT_SATISFIED)
    content = ef.content
    if offset >= len(content):
        return status(SW.WRONG_P1P2)  # offset at or beyond the end [card] (JICSAP 6.4.1(4))
    # At most Ne bytes (Le 00 = 256, extended 0000 = 65536); a read that asks past the end
    # gets the bytes that are left, with 9000 [card].
    return content[offset : offset + apdu.le] + OK


#: Short Le reaches 256 bytes; a longer fixed answer needs an extended Le of its size.
SHORT_NE = 256


def get_data(card: Card, apdu: CommandApdu) -> bytes:
    """GET DATA ``5F51``: the contact ATR without its leading 3B [card], any time; the MF-level
    objects only while no application is selected [card] (docs/card.md#get-data)."""
    if apdu.data:
        return status(SW.WRONG_LENGTH)
    tag = apdu.p1 << 8 | apdu.p2
    if tag == 0x5F51:
        return fixed_answer(apdu, contact_atr(card.state.atr_form)[1:])
    data = card.mf_objects.get(tag) if card.session.app is None else None
    if data is None:
        return status(SW.REFERENCE_DATA_NOT_FOUND)
    if len(data) > SHORT_NE and (apdu.le or 0) < len(data):
        return status(SW.WRONG_LENGTH)  # [model] 6Cxx cannot say more than 256
    return fixed_answer(apdu, data)


# --- READ RECORD and INTERNAL AUTHENTICATE (the common AP) ---------------------------------

#: P2 low bits of READ RECORD: record number P1; records P1 to the last (JICSAP Table 8).
RECORD_P1 = 0x04
RECORDS_FROM_P1 = 0x05
MAX_CHALLENGE_DATA = 255


def read_record(card: Card, apdu: CommandApdu) -> bytes:
    """READ RECORD ``00 B2 rec P2 Le``: P2 ``04`` the current EF, ``(SFI << 3) | 04`` by SFI
    [card]; the records are simple-TLV objects."""
    if apdu.data:
        return status(SW.WRONG_LENGTH)
    mode, sfi = apdu.p2 & 0x07, apdu.p2 >> 3
    if mode == RECORDS_FROM_P1:
        return status(SW.FUNCTION_NOT_SUPPORTED)  # [model] as some real cards answer [card]
    if mode != RECORD_P1 or sfi == 0x1F or apdu.p1 == 0:
        return status(SW.INCORRECT_P1P2)  # [model] record 0 (the current record) is never set
    if sfi:
        _current_app(card)
        assert card.session.app is not None
        ef = card.session.app.by_sfi(sfi)
        if ef is None:
            return status(SW.FILE_NOT_FOUND)
        card.session.ef = ef
    else:
        ef = card.session.ef
        if ef is None:
            return status(SW.COMMAND_NOT_ALLOWED_NO_EF)
    if isinstance(ef, BinaryEf):
        return status(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    if not isinstance(ef, RecordEf):
        return status(SW.COMMAND_NOT_ALLOWED_NO_EF)
    if apdu.p1 > len(ef.records):
        return status(SW.RECORD_NOT_FOUND)
    return fixed_answer(apdu, ef.records[apdu.p1 - 1])  # 6Cxx when Ne is short [model]


def internal_authenticate(card: Card, apdu: CommandApdu) -> bytes:
    """INTERNAL AUTHENTICATE ``00 88 00 (80|SFI) Lc challenge Le``: a signature by the key the
    EF holds; only the common AP's ``0019`` answers, with no credential [card]."""
    if apdu.p1 != 0x00:
        return status(SW.INCORRECT_P1P2)
    if not 1 <= len(apdu.data) <= MAX_CHALLENGE_DATA:
        return status(SW.WRONG_LENGTH)
    ef = _reference(card, apdu.p2)
    if isinstance(ef, KeyEf):
        # JPKI keys sign with COMPUTE DIGITAL SIGNATURE: 6982 behind a PIN [card]; [model]
        # 6985 once it is verified.
        if ef.pin is None or ef.pin not in card.session.verified:
            return status(SW.SECURITY_STATUS_NOT_SATISFIED)
        return status(SW.CONDITIONS_NOT_SATISFIED)
    if not isinstance(ef, AuthKeyEf):
        return status(SW.COMMAND_NOT_ALLOWED_NO_EF)
    return fixed_answer(apdu, ef.sign(apdu.data))


# --- issuer authentication and re-set ([model], docs/card.md#issuer-reset) -----------------


def get_challenge(card: Card, apdu: CommandApdu) -> bytes:
    """Ne random bytes, Le 1..256 [card]; kept for EXTERNAL AUTHENTICATE [model]."""
    if apdu.p1 or apdu.p2:
        return status(SW.INCORRECT_P1P2)
    if apdu.le is None or apdu.le > MAX_CHALLENGE_LENGTH or apdu.data:
        return status(SW.WRONG_LENGTH)  # no Le, or extended Le past 256 [model]
    card.session.challenge = os.urandom(apdu.le)
    return card.session.challenge + OK


def external_authenticate(card: Card, apdu: CommandApdu) -> bytes:
    """[model] Issuer authentication: the cryptogram over the last challenge, used once."""
    if apdu.p1 or apdu.p2:
        return status(SW.INCORRECT_P1P2)
    if len(apdu.data) != CRYPTOGRAM_LENGTH:
        return status(SW.WRONG_LENGTH)
    challenge, card.session.challenge = card.session.challenge, None
    if challenge is None:
        return status(SW.CONDITIONS_NOT_SATISFIED)
    if not hmac.compare_digest(issuer_cryptogram(challenge), apdu.data):
        card.session.issuer_authenticated = False
        return status(SW.AUTHENTICATION_FAILED)
    card.session.issuer_authenticated = True
    return OK


def reset_retry_counter(card: Card, apdu: CommandApdu) -> bytes:
    """[model] RESET RETRY COUNTER: P1 02 sets a new value, P1 03 unblocks keeping it."""
    if apdu.p1 not in (0x02, 0x03):
        return status(SW.INCORRECT_P1P2)
    ef = _pin_ef(card, apdu.p2)
    _check_usable(card, ef)
    assert ef.pin is not None
    if not card.session.issuer_authenticated:
        return status(SW.SECURITY_STATUS_NOT_SATISFIED)
    if apdu.p1 == 0x02:
        if ef.change == "none":
            return status(SW.COMMAND_NOT_ALLOWED_NO_EF)  # [model] a check number is printed
        if pins.SPECS[ef.pin].violation(apdu.data):
            return status(SW.INCORRECT_DATA)
        card.update_pin(ef.pin, pins.new_value(apdu.data))
    else:
        if apdu.data:
            return status(SW.WRONG_LENGTH)
        max_tries = pins.SPECS[ef.pin].max_tries
        card.update_pin(ef.pin, pins.set_tries(max_tries))
    return OK


def key_ef(card: Card, p2: int) -> KeyEf:
    """The key EF named by P2 of COMPUTE DIGITAL SIGNATURE, usable in this session."""
    ef = _reference(card, p2)
    if not isinstance(ef, KeyEf):
        raise SwError(SW.COMMAND_NOT_ALLOWED_NO_EF)
    if ef.pin is None or ef.pin not in card.session.verified:
        raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)
    return ef
