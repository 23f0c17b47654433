"""The control panel's web server (aiohttp), in a thread of its own beside the vpcd slots.

Safety, as Jupyter does it: bound to 127.0.0.1 unless told otherwise; every request carries
the random token printed at start (``?token=`` on the first visit, which also sets a cookie;
the ``X-Panel-Token`` header, which every POST must carry, so a cookie alone changes
nothing); and the ``Host`` header must name this server (no DNS rebinding).

Routes: ``/`` the page, ``/static/*`` its script and style, ``/api/state`` everything now,
``/api/events`` the same then every change (server-sent events), ``/api/slots/N/control``
(POST) one click, ``/api/slots/N/trace`` the slot's trace (JSON Lines, redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from emulator.vpcd import VpcdEvent, VpcdServer
from harness.panel.actions import ControlError, run_control
from harness.panel.model import Message, SlotPanel, options
from harness.trace.recorder import dumps

logger = logging.getLogger(__name__)

__all__ = ["COOKIE", "LOOPBACK", "PanelServer"]

COOKIE = "myna_panel_token"
LOOPBACK = "127.0.0.1"
#: Server-side refresh of PIN counters, to see changes made by other processes (the page is
#: pushed what changed; it never polls).
REFRESH_SECONDS = 1.0
_STATIC = ("index.html", "panel.js", "panel.css")
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PanelServer:
    """Serves the panel for *servers* (one per slot) on *host*:*port* (0: any free port)."""

    def __init__(
        self,
        servers: Sequence[VpcdServer],
        host: str = LOOPBACK,
        port: int = 0,
        *,
        token: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(24)
        self.slots = [SlotPanel(n, server) for n, server in enumerate(servers)]
        self._status: list[Message] = [{"slot": s.index, "reader": s.reader} for s in self.slots]
        self._clients: set[asyncio.Queue[Message | None]] = set()
        self._dirty: list[asyncio.Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/?token={self.token}"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a daemon thread; ``OSError`` (port taken ...) is raised here."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="myna-panel", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for slot in self.slots:
            dirty = asyncio.Event()
            self._dirty.append(dirty)
            slot.server.observers.append(self._observer(loop, slot, dirty))
            self._tasks.append(loop.create_task(self._refresh(slot, dirty)))
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])  # the port the system picked

    async def _stop(self) -> None:
        for queue in self._clients:
            queue.put_nowait(None)
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        # Status reads and controls run in the loop's executor threads, on the card: wait for
        # them, so that nothing touches the card once close() has returned (a card database
        # closed under a running read crashed the process inside SQLite).
        await asyncio.get_running_loop().shutdown_default_executor()

    # --- events ------------------------------------------------------------------------------

    def _observer(
        self, loop: asyncio.AbstractEventLoop, slot: SlotPanel, dirty: asyncio.Event
    ) -> Callable[[VpcdEvent], None]:
        def observe(event: VpcdEvent) -> None:  # slot thread: hand over, in order
            loop.call_soon_threadsafe(self._on_event, slot, dirty, event)

        return observe

    def _on_event(self, slot: SlotPanel, dirty: asyncio.Event, event: VpcdEvent) -> None:
        self._broadcast({"type": "log", "entry": slot.on_event(event)})
        dirty.set()

    async def _refresh(self, slot: SlotPanel, dirty: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dirty.wait(), REFRESH_SECONDS)
            dirty.clear()
            try:
                status = slot.merge(await loop.run_in_executor(None, slot.read_status))
            except Exception:
                logger.exception("panel: reading slot %d failed", slot.index)
                await asyncio.sleep(REFRESH_SECONDS)
                continue
            if status != self._status[slot.index]:
                self._status[slot.index] = status
                self._broadcast({"type": "slot", "status": status})

    def _broadcast(self, message: Message) -> None:
        for queue in self._clients:
            queue.put_nowait(message)

    def snapshot(self) -> Message:
        log = sorted((e for s in self.slots for e in s.log), key=lambda e: e["time"], reverse=True)
        return {"type": "hello", "slots": self._status, "log": log, "options": options()}

    # --- web ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/slots/{slot}/control", self._control)
        app.router.add_get("/api/slots/{slot}/trace", self._trace)
        return app

    def _host_ok(self, header: str | None) -> bool:
        if not header:
            return False
        parts = urlsplit(f"//{header}")
        try:
            port = parts.port
        except ValueError:
            return False
        name = parts.hostname or ""
        if port != self.port:
            return False
        if self.host in ("0.0.0.0", "::", ""):
            return True  # opened to the network on purpose: the token is the guard
        return is_loopback(name) or name == self.host.strip("[]").lower()

    def _token_ok(self, request: web.Request) -> bool:
        given = request.headers.get("X-Panel-Token")
        if given is None and request.method == "GET":
            given = request.query.get("token") or request.cookies.get(COOKIE)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._host_ok(request.headers.get("Host")):
            return web.Response(status=403, text="403: this Host is not the panel's\n")
        if not self._token_ok(request):
            return web.Response(
                status=403,
                text="403: the panel's token is missing or wrong"
                " (use the URL myna-emu serve printed)\n",
            )
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def _page(self, request: web.Request) -> web.StreamResponse:
        response = _file("index.html")
        if request.query.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return _file(name)

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._clients.add(queue)
        try:
            message: Message | None = self.snapshot()
            while message is not None:
                await response.write(f"data: {json.dumps(message)}\n\n".encode())
                try:
                    message = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    message = {"type": "ping"}
        except ConnectionResetError:
            pass
        finally:
            self._clients.discard(queue)
        return response

    def _slot(self, request: web.Request) -> SlotPanel:
        try:
            return self.slots[int(request.match_info["slot"])]
        except (ValueError, IndexError):
            raise web.HTTPNotFound() from None

    async def _control(self, request: web.Request) -> web.StreamResponse:
        slot = self._slot(request)
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return web.json_response({"error": "send a JSON object with an action"}, status=400)
        loop = asyncio.get_running_loop()
        try:
            done = await loop.run_in_executor(None, run_control, slot.server, body["action"], body)
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        entry = slot.on_control(done.action, done.text, done.pin, done.tries)
        self._broadcast({"type": "log", "entry": entry})
        self._dirty[slot.index].set()
        return web.json_response({"ok": True, "text": done.text})

    async def _trace(self, request: web.Request) -> web.StreamResponse:
        slot = self._slot(request)
        body = dumps(slot.trace.records)
        name = f"panel-slot{slot.index}.jsonl"
        return web.Response(
            text=body,
            content_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _file(name: str) -> web.Response:
    data = resources.files("harness.panel").joinpath("static", name).read_bytes()
    content_type = _TYPES[name[name.rindex(".") :]]
    return web.Response(body=data, content_type=content_type, charset="utf-8")
