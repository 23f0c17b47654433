"""The Juki (住基, residence registry) application and the common AP that shares its PIN."""

from __future__ import annotations

from emulator.commands import jicsap_change_key
from emulator.files import Application, Handler, PinEf
from emulator.grammar.ids import JUKI
from emulator.state import CardState

#: Some clients read the Juki PIN in the common AP [client]. [model] It is the same PIN,
#: with one shared counter.



def build(state: CardState) -> list[Application]:
    pin = PinEf(JUKI.EF_PIN, "juki", change="jicsap")
    commands: dict[tuple[int, int], Handler] = {
        (0x80, JUKI.INS_JICSAP_CHANGE_KEY): jicsap_change_key
    }
    return [
        Application("juki", JUKI.AID, {JUKI.EF_PIN: pin}, commands),
        Application("common", JUKI.COMMON_AID, {JUKI.EF_PIN: pin}, commands),
    ]
