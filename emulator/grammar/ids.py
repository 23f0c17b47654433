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
    EF_PIN: Final = 0x0011
    EF_BLOCKED_PIN: Final = 0x0012  # blocked on every card examined [card]
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
    EF_PIN: Final = 0x001C
    INS_JICSAP_CHANGE_KEY: Final = 0x32  # CLA 80


class SURFACE:
    """Card-surface application (券面事項確認AP)."""

    AID: Final = bytes.fromhex("D3921000310001010402")
    EF_BIRTH: Final = 0x0001
    EF_ENTRIES: Final = 0x0002
    EF_MY_NUMBER: Final = 0x0005


#: DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2 note 1): what clients send with P1 ``00``.
SHA256_DIGEST_INFO_PREFIX: Final = bytes.fromhex("3031300d060960864801650304020105000420")
