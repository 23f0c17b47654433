"""Identifiers of the My Number Card: application AIDs, EF ids, proprietary INS codes, tags.

One source for the card (``emulator/apps``) and its clients (``harness/sessions``); see
``docs/card.md`` (#applications, #files). Short file identifiers are an EF id's low five bits.
"""

from __future__ import annotations

from typing import Final


class JPKI:
    """公的個人認証 application."""

    AID: Final = bytes.fromhex("D392F000260100000001")
    EF_SIGN_CERT: Final = 0x0001  # needs the signing password
    EF_SIGN_CA_CERT: Final = 0x0002
    EF_TOKEN_INFO: Final = 0x0006
    EF_CERT_AVAILABILITY: Final = 0x0008
    #: EFs that exist on real cards with content not public (0009: sixteen FF) [card].
    EF_EXTRA: Final = (0x0005, 0x0009, 0x0010, 0x0016, 0x0019, 0x001C, 0x001E)
    EF_AUTH_CERT: Final = 0x000A
    EF_AUTH_CA_CERT: Final = 0x000B
    EF_AUTH_KEY: Final = 0x0017
    EF_AUTH_PIN: Final = 0x0018
    EF_SIGN_KEY: Final = 0x001A
    EF_SIGN_PIN: Final = 0x001B
    INS_COMPUTE_DIGITAL_SIGNATURE: Final = 0x2A  # CLA 80


class TEXT:
    """Card-info input-helper application (券面事項入力補助AP)."""

    AID: Final = bytes.fromhex("D3921000310001010408")
    EF_MY_NUMBER: Final = 0x0001
    EF_BASIC_FOUR: Final = 0x0002
    EF_SIGNATURE: Final = 0x0003  # integrity record: digests of 0001/0002 and a signature
    EF_CERT: Final = 0x0004  # the AP's card-verifiable certificate
    EF_AP_INFO: Final = 0x0005
    EF_FILLER: Final = 0x0008  # sixteen FF [card]
    EF_PIN: Final = 0x0011
    EF_BLOCKED_PIN: Final = 0x0012  # blocked on every card examined [card]
    EF_CHECK_A: Final = 0x0014  # check number A: the My Number
    EF_CHECK_B: Final = 0x0015  # check number B: birth YYMMDD (era) + expiry YYYY + code
    TAG_SIGNATURE: Final = 0xFF30
    TAG_DIGEST_MY_NUMBER: Final = 0xDF31
    TAG_DIGEST_ATTRIBUTES: Final = 0xDF32
    TAG_SIGNATURE_VALUE: Final = 0xDF33
    TAG_AP_INFO: Final = 0xFF50  # [model] tag
    TAG_MY_NUMBER: Final = 0xFF10
    TAG_BASIC_FOUR: Final = 0xFF20
    TAG_OFFSETS: Final = 0xDF21
    TAG_NAME: Final = 0xDF22
    TAG_ADDRESS: Final = 0xDF23
    TAG_BIRTH: Final = 0xDF24
    TAG_SEX: Final = 0xDF25


class JUKI:
    """Juki (住基) application and the common AP some clients read its PIN in [client]."""

    AID: Final = bytes.fromhex("D3921000310001010401")
    COMMON_AID: Final = bytes.fromhex("D3921000310001010100")
    EF_PIN: Final = 0x001C  # in the Juki AP and, as a separate reference, in the common AP
    EF_CARD_INFO: Final = 0x0001  # common AP: a record file, record 1 = card info [card]
    EF_INTERNAL_AUTH_KEY: Final = 0x0019  # common AP: answers INTERNAL AUTHENTICATE [card]
    TAG_CARD_INFO: Final = 0x01  # simple-TLV tag of the card-info record [card]
    INS_JICSAP_CHANGE_KEY: Final = 0x32  # CLA 80


class SURFACE:
    """Card-surface application (券面事項確認AP)."""

    AID: Final = bytes.fromhex("D3921000310001010402")
    EF_BIRTH: Final = 0x0001
    EF_ENTRIES: Final = 0x0002
    EF_AP_INFO: Final = 0x0003
    EF_CERT: Final = 0x0004
    EF_MY_NUMBER: Final = 0x0005
    EF_FILLER: Final = 0x0006  # sixteen FF
    EF_CHECK_B: Final = 0x0012
    EF_CHECK_A: Final = 0x0013
    TAG_BIRTH: Final = 0xFF10
    TAG_ENTRIES: Final = 0xFF20
    TAG_AP_INFO: Final = 0xFF30
    TAG_MY_NUMBER: Final = 0xFF40


class ISD:
    """The issuer security domain, selectable at MF level [card]."""

    AID: Final = bytes.fromhex("A0000001510000")


class CVC:
    """Card-verifiable certificates (``7F21``) in text AP / surface AP ``0004`` [card]."""

    TAG_CERT: Final = 0x7F21
    TAG_BODY: Final = 0x7F4E
    TAG_SIGNATURE: Final = 0x5F37
    TAG_MODULUS: Final = 0x90
    TAG_EXPONENT: Final = 0x91


#: DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2 note 1): what clients send with P1 ``00``.
SHA256_DIGEST_INFO_PREFIX: Final = bytes.fromhex("3031300d060960864801650304020105000420")
