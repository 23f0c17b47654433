"""The people and terminals around a card (docs/scenarios.md#actors); none of them is the card."""

from __future__ import annotations
