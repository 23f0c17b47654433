"""The Juki (住基, residence registry) application and the common AP that shares its PIN."""

from __future__ import annotations

from emulator.commands import jicsap_change_key
from emulator.files import Application, Handler, PinEf
from emulator.state import CardState

AID = bytes.fromhex("D3921000310001010401")  # [card]
#: Some clients read the Juki PIN in the common AP [client]. [model] It is the same PIN,
#: with one shared counter.
COMMON_AID = bytes.fromhex("D3921000310001010100")

EF_PIN = 0x001C
INS_JICSAP_CHANGE_KEY = 0x32


def build(state: CardState) -> list[Application]:
    pin = PinEf(EF_PIN, "juki", change="jicsap")
    commands: dict[tuple[int, int], Handler] = {(0x80, INS_JICSAP_CHANGE_KEY): jicsap_change_key}
    return [
        Application("juki", AID, {EF_PIN: pin}, commands),
        Application("common", COMMON_AID, {EF_PIN: pin}, commands),
    ]
