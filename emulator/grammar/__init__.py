"""The single-sourced APDU grammar: commands, responses, status words, TLV objects."""

from __future__ import annotations

from emulator.grammar.apdu import (
    ApduFormatError,
    Case,
    CommandApdu,
    ResponseApdu,
    build_command,
    build_response,
    parse_command,
    parse_response,
)
from emulator.grammar.sw import SW, is_success, sw_name, tries_left, verify_failed
from emulator.grammar.tlv import Tlv, TokenInfo, build_tlvs, parse_tlvs

__all__ = [
    "SW",
    "ApduFormatError",
    "Case",
    "CommandApdu",
    "ResponseApdu",
    "Tlv",
    "TokenInfo",
    "build_command",
    "build_response",
    "build_tlvs",
    "is_success",
    "parse_command",
    "parse_response",
    "parse_tlvs",
    "sw_name",
    "tries_left",
    "verify_failed",
]
