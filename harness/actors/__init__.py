"""The people and terminals around a card (scenarios.md "Actors"); none of them is the card."""

from __future__ import annotations
