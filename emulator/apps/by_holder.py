"""EF contents that depend only on the card holder, built once per holder and process.

The text and surface applications encode their holder records with construct and sign them
(most of a card's creation time); every card of a test run has the same holder, so the
bytes are kept, keyed by the holder's fields. The contents are immutable ``bytes``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TypeVar

from emulator.state import Holder

T = TypeVar("T")

#: Distinct holders whose EFs are kept (a run has one; generated cards one each).
CACHED_HOLDERS = 64


def cached_by_holder(build: Callable[[Holder], T]) -> Callable[[Holder], T]:
    """*build* (a pure function of the holder's fields), computed once per holder."""

    @functools.lru_cache(maxsize=CACHED_HOLDERS)
    def by_fields(fields: tuple[str, ...]) -> T:
        return build(Holder(*fields))

    @functools.wraps(build)
    def cached(holder: Holder) -> T:
        return by_fields(dataclasses.astuple(holder))

    return cached
