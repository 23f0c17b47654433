"""The Juki (住基, residence registry) application and the common AP that shares its PIN."""

from __future__ import annotations

from emulator.commands import jicsap_change_key
from emulator.files import Application, Handler, PinEf
from emulator.grammar.ids import JUKI
from emulator.protocol import Application as App
from emulator.protocol import references_in
from emulator.state import CardState

#: Some clients read the Juki PIN in the common AP [client]. [model] It is the same PIN,
#: with one shared counter (both rows of the reference table name the same secret).


def build(state: CardState) -> list[Application]:
    commands: dict[tuple[int, int], Handler] = {
        (0x80, JUKI.INS_JICSAP_CHANGE_KEY): jicsap_change_key
    }
    return [
        Application(app, app.aid, {ref.ef: PinEf.of(ref) for ref in references_in(app)}, commands)
        for app in (App.JUKI, App.COMMON)
    ]
