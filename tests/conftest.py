"""Shared fixtures. Behaviour tests take ``link``: a card and a transport to it.

``link`` is parametrised by transport: ``inprocess`` always; ``vpcd`` (the same card object
served through a real pcscd + vpcd, marked ``vpcd``) where the vpcd support is available.
Tests written against ``link.transport`` therefore prove the PC/SC path is the same card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.card import Card
from harness.inprocess import InProcessTransport
from harness.transport import Transport
from tests.support.cards import fresh_card


@dataclass
class Link:
    card: Card
    transport: Transport
    kind: str

    def send(self, hexstr: str) -> bytes:
        """Transmit an APDU given as hex (spaces allowed); return the raw response."""
        return self.transport.transmit(bytes.fromhex("".join(hexstr.split())))

    def sw(self, hexstr: str) -> int:
        r = self.send(hexstr)
        return r[-2] << 8 | r[-1]


def _inprocess(card: Card) -> Iterator[Transport]:
    with InProcessTransport(card) as t:
        yield t


TRANSPORTS: dict[str, Callable[[Card], Iterator[Transport]]] = {"inprocess": _inprocess}

try:  # the vpcd leg (issue 3); absent until that support lands
    from tests.support.vpcd_link import vpcd_transport

    TRANSPORTS["vpcd"] = vpcd_transport
except ImportError:  # pragma: no cover
    pass


def _params() -> list[Any]:
    return [
        pytest.param(k, marks=[pytest.mark.vpcd] if k == "vpcd" else [], id=k) for k in TRANSPORTS
    ]


@pytest.fixture
def card() -> Card:
    """A fresh in-memory standard card (default PINs), keys shared across the session."""
    return fresh_card()


@pytest.fixture(params=_params())
def make_link(request: pytest.FixtureRequest) -> Iterator[Callable[..., Link]]:
    """Factory: ``make_link(**card_kwargs)`` -> :class:`Link` over this run's transport."""
    kind: str = request.param
    opened: list[Iterator[Transport]] = []

    def factory(card: Card | None = None, **kwargs: Any) -> Link:
        c = card if card is not None else fresh_card(**kwargs)
        gen = TRANSPORTS[kind](c)
        opened.append(gen)
        return Link(c, next(gen), kind)

    yield factory
    for gen in reversed(opened):
        for _ in gen:  # run the generator's cleanup
            pass


@pytest.fixture
def link(make_link: Callable[..., Link]) -> Link:
    """A standard card with default PINs behind this run's transport."""
    return make_link()
