"""The card's applications, one module each, assembled from the card state."""

from __future__ import annotations

from emulator.apps import jpki, juki, mf, surface, text
from emulator.files import Application
from emulator.state import CardState


def build_applications(state: CardState) -> dict[bytes, Application]:
    """Every selectable application of a card in *state*, keyed by AID."""
    apps = [
        jpki.build(state),
        text.build(state),
        surface.build(state),
        *juki.build(state),
        mf.issuer_security_domain(),
    ]
    return {app.aid: app for app in apps}
