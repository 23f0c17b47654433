"""pytest plugin for vendors testing their apps against a virtual My Number Card."""

from __future__ import annotations
