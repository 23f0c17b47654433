"""``myna-emu serve``: put virtual cards into vpcd reader slots until told to stop.

One slot: served by this process. Several slots: one process per slot
(:mod:`emulator.serve_workers`: the card's Python work holds the GIL, so threads of one
process would take turns), this process owning their lifecycle and logging; ``--one-process``
and ``--panel`` keep every slot in threads of this process instead (the panel works on the
live servers). Either way, SIGINT / SIGTERM let every slot finish the exchange in hand, then
each card is closed (a durable card saves its state) and the exit status is 0. Also runnable
alone: ``python -m emulator.cli_serve --echo --slot 1``.

Add-ons (``--panel``: the browser control panel) live in the harness, which the emulator never
imports: they are found by name in the entry-point group :data:`ADDON_GROUP` and given the
running servers (:class:`ServeAddon`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from emulator import TRAFFIC
from emulator.serve_workers import (
    CardKind,
    CardOpenError,
    SlotSpec,
    close_card,
    open_card,
    run_workers,
)
from emulator.vpcd import DEFAULT_HOST, VirtualCard, VpcdServer, slot_port

logger = logging.getLogger(__name__)

__all__ = ["ADDON_GROUP", "ServeAddon", "add_serve_parser", "main", "run_serve"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Entry-point group of serve add-ons: ``name = "module:factory"``, where the factory takes
#: the servers (one per slot, in --slot order) and the parsed arguments and returns a
#: :class:`ServeAddon`, or raises ``ValueError`` / ``OSError`` with a one-line message.
ADDON_GROUP = "myna_hil.serve_addons"


class ServeAddon(Protocol):
    """What ``serve`` keeps of a started add-on: it is closed before the cards are."""

    def close(self) -> None: ...


AddonFactory = Callable[[Sequence[VpcdServer], argparse.Namespace], ServeAddon]

_DESCRIPTION = """\
Attach virtual My Number Cards to vsmartcard's vpcd driver in pcscd. Slot N is TCP port
35963+N: slots 0 and 1 are the readers "Virtual PCD 00 00" and "Virtual PCD 00 01".
More readers: add reader.conf entries with other CHANNELIDs (each gives two slots; see
ci/pcscd-start.sh, MYNA_VPCD_EXTRA) and restart pcscd.

Several cards: repeat --slot, and give one --state per slot, in the same order
(--state a.db --slot 0 --state b.db --slot 1 puts a.db in slot 0). With --memory or --echo
every slot gets its own fresh card and no --state is needed. Each slot is then served by a
process of its own (this one starts them, prints their log, and stops them all; a slot whose
process dies ends the whole serve with exit status 1). --one-process (and --panel) serve
every slot from threads of this process instead.

Stops on SIGINT / SIGTERM after the exchange in hand; state files are saved on the way out.
"""


def add_serve_parser(subparsers: Any) -> None:
    """Register the ``serve`` sub-command on an ``argparse`` sub-parsers object."""
    parser = subparsers.add_parser(
        "serve",
        help="put the virtual card into a vpcd reader slot (pcscd)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(func=run_serve)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    parser.add_argument(
        "--state",
        metavar="FILE",
        action="append",
        type=Path,
        default=[],
        help="card state file (repeat: one per --slot, in the same order)",
    )
    source.add_argument(
        "--memory", action="store_true", help="fresh in-memory card(s), nothing saved"
    )
    source.add_argument(
        "--echo",
        action="store_true",
        help="trivial card answering 90 00 to everything (throughput baseline)",
    )
    source.add_argument(
        "--echo-sized",
        action="store_true",
        help="like --echo, but answers as many bytes as Le asks for (zeros, then 90 00): "
        "the baseline for a mix whose answers carry data",
    )
    parser.add_argument(
        "--profile",
        choices=("standard", "face-auth"),
        default="standard",
        help="card profile for --memory (a state file carries its own); default: standard",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--slot",
        metavar="N",
        type=int,
        action="append",
        default=[],
        help="vpcd slot, port 35963+N (repeat for several cards); default: 0",
    )
    where.add_argument(
        "--port",
        metavar="P",
        type=int,
        action="append",
        default=[],
        help="exact vpcd TCP port instead of a slot (repeatable)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"vpcd host (default: {DEFAULT_HOST})")
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="serve several slots from threads of one process (default: a process per slot;"
        " --panel implies this)",
    )
    parser.add_argument(
        "--panel",
        metavar="PORT",
        nargs="?",
        type=int,
        const=0,
        default=None,
        help="also open the browser control panel on 127.0.0.1:PORT (default: a free port);"
        " prints its URL with a random token (needs myna-hil[panel])",
    )
    parser.add_argument(
        "--panel-host",
        metavar="ADDR",
        default=None,
        help="bind the panel to ADDR instead of 127.0.0.1 (opens it to the network: the token"
        " is then all that protects the cards)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: debug log; -vv: also APDU hex (PINs redacted)",
    )


def _ports(args: argparse.Namespace) -> list[int]:
    if args.port:
        return list(args.port)
    if any(slot < 0 for slot in args.slot):
        raise _UsageError("--slot must be 0 or more")
    return [slot_port(slot) for slot in (args.slot or [0])]


def _configure_logging(verbosity: int) -> None:
    level = {0: logging.INFO, 1: logging.DEBUG}.get(verbosity, TRAFFIC)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _specs(args: argparse.Namespace, ports: list[int]) -> list[SlotSpec]:
    """What each slot serves; raises ``_UsageError`` for a state file that is not there."""
    if args.echo or args.echo_sized or args.memory:
        kind: CardKind = "echo" if args.echo else "echo-sized" if args.echo_sized else "memory"
        return [SlotSpec(kind, args.host, port, args.profile) for port in ports]
    states: list[Path] = args.state
    for path in states:
        if not path.is_file():
            raise _UsageError(f"state file not found: {path}")
    return [
        SlotSpec("state", args.host, port, args.profile, path)
        for path, port in zip(states, ports, strict=True)
    ]


def _open_cards(specs: list[SlotSpec]) -> list[VirtualCard]:
    """One card per slot, in this process; raises ``_UsageError`` with a one-line message."""
    cards: list[VirtualCard] = []
    for spec in specs:
        try:
            cards.append(open_card(spec))
        except CardOpenError as exc:
            for card in cards:
                close_card(card)
            raise _UsageError(str(exc)) from None
    return cards


class _UsageError(Exception):
    """A command-line mistake; reported on one line, exit status 2."""


def _check(args: argparse.Namespace, ports: list[int]) -> None:
    if any(not 0 < port < 65536 for port in ports):
        raise _UsageError("--port must be 1..65535")
    if len(set(ports)) != len(ports):
        raise _UsageError("a port is given twice")
    count = len(ports)
    if args.echo or args.echo_sized or args.memory:
        if args.state:
            raise _UsageError("--state cannot be combined with --memory or --echo")
        return
    if not args.state:
        raise _UsageError("give --state FILE (or --memory / --echo)")
    if len(args.state) != count:
        raise _UsageError(f"{count} slot(s) need {count} --state file(s), got {len(args.state)}")


def _load_addon(name: str) -> AddonFactory:
    """The factory registered as *name* in :data:`ADDON_GROUP` (``_UsageError`` if none)."""
    found = importlib.metadata.entry_points(group=ADDON_GROUP, name=name)
    for entry in found:
        factory: AddonFactory = entry.load()
        return factory
    raise _UsageError(
        f"--{name}: the {name} add-on is not installed (pip install 'myna-hil[{name}]';"
        " an editable install must be re-installed to register it)"
    )


def _start_addons(args: argparse.Namespace, servers: list[VpcdServer]) -> list[ServeAddon]:
    if args.panel is None:
        if args.panel_host is not None:
            raise _UsageError("--panel-host needs --panel")
        return []
    if not 0 <= args.panel < 65536:
        raise _UsageError("--panel PORT must be 0..65535")
    factory = _load_addon("panel")
    try:
        return [factory(servers, args)]
    except ImportError as exc:
        raise _UsageError(f"--panel: {exc} (pip install 'myna-hil[panel]')") from None
    except (ValueError, OSError) as exc:
        raise _UsageError(f"--panel: {exc}") from None


def run_serve(args: argparse.Namespace) -> int:
    """Serve the cards until SIGINT / SIGTERM; the exit status."""
    _configure_logging(args.verbose)
    try:
        ports = _ports(args)
        _check(args, ports)
        specs = _specs(args, ports)
        if len(specs) > 1 and not args.one_process and args.panel is None:
            if args.panel_host is not None:
                raise _UsageError("--panel-host needs --panel")
            return run_workers(specs, logging.getLogger().getEffectiveLevel())
        cards = _open_cards(specs)
    except _UsageError as exc:
        print(f"myna-emu serve: {exc}", file=sys.stderr)
        return EXIT_USAGE

    servers = [VpcdServer(card, args.host, port) for card, port in zip(cards, ports, strict=True)]
    try:
        addons = _start_addons(args, servers)
    except _UsageError as exc:
        print(f"myna-emu serve: {exc}", file=sys.stderr)
        for card in cards:
            close_card(card)
        return EXIT_USAGE
    threads = [
        threading.Thread(target=server.serve, name=f"vpcd-{server.port}", daemon=True)
        for server in servers
    ]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: stopping after the exchange in hand", signal.Signals(signum).name)
        for server in servers:
            server.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = EXIT_OK
    try:
        for thread in threads:
            thread.start()
        # join() with a timeout keeps the main thread responsive to signals; a slot thread
        # that dies without being asked to stop takes the others down with it.
        while any(thread.is_alive() for thread in threads):
            for thread, server in zip(threads, servers, strict=True):
                thread.join(timeout=0.2)
                if not thread.is_alive() and not server.stopping:
                    logger.error("slot thread %s died; stopping", thread.name)
                    status = EXIT_FAILURE
                    for other in servers:
                        other.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for addon in addons:
            try:
                addon.close()
            except Exception:
                logger.exception("closing an add-on failed")
        for server in servers:
            close_card(server.card)  # an add-on may have put another card in the slot
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m emulator.cli_serve``), same options as serve."""
    parser = argparse.ArgumentParser(
        prog="myna-emu serve",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
