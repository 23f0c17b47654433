"""Representation adapters shared by the grammar modules (no behaviour, only encoding)."""

from __future__ import annotations

from typing import Any

from construct import Adapter, Construct


class LeAdapter(Adapter):  # type: ignore[misc]
    """Le field: the encoded value 0 stands for the maximum (256 short, 65536 extended)."""

    def __init__(self, subcon: Construct, maximum: int) -> None:
        super().__init__(subcon)
        self.maximum = maximum

    def _decode(self, obj: int, context: Any, path: str) -> int:
        return obj or self.maximum

    def _encode(self, obj: int, context: Any, path: str) -> int:
        return 0 if obj == self.maximum else obj
