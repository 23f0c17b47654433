"""The control panel: see and steer the virtual cards of ``myna-emu serve`` from a browser.

``myna-emu serve ... --panel [PORT]`` finds :func:`attach` through the entry point
``myna_hil.serve_addons: panel`` (the emulator never imports the harness) and hands it the
running vpcd servers. See docs/panel.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from emulator.vpcd import VpcdServer
from harness.panel.server import LOOPBACK, PanelServer, is_loopback

logger = logging.getLogger(__name__)

__all__ = ["PanelServer", "attach"]


def attach(servers: Sequence[VpcdServer], args: argparse.Namespace) -> PanelServer:
    """Start the panel for *servers* as ``serve --panel [PORT] [--panel-host ADDR]`` asks;
    prints its URL (with the token) on stderr. ``OSError`` when the port cannot be bound."""
    host = args.panel_host or LOOPBACK
    port = int(args.panel or 0)
    panel = PanelServer(servers, host, port)
    panel.start()
    if not is_loopback(host):
        logger.warning(
            "the control panel listens on %s:%d: anyone who can reach it and has"
            " the token can steer the cards",
            host,
            panel.port,
        )
    print(f"myna-emu serve: control panel at {panel.url}", file=sys.stderr, flush=True)
    return panel
