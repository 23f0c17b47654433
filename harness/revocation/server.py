"""The TEST revocation service over HTTP on localhost (standard library server, a thread).

Endpoints (the paths are ours [model]; the media types are RFC 5280 / RFC 6960's):

- ``GET /crl/sign.crl``, ``GET /crl/auth.crl`` -- the CA's CRL, ``application/pkix-crl``;
- ``POST /ocsp`` (``application/ocsp-request``) and ``GET /ocsp/<base64 request>`` --
  an OCSP response, ``application/ocsp-response``.

It listens on 127.0.0.1 on a port the system picks, so parallel runs never collide. A fault
can be injected (:data:`~harness.revocation.responder.FAULTS`): OCSP ``tryLater`` /
``internalError`` answers, or HTTP 503 for every request -- the service errors a relying
party has to handle. Each answer is logged (:mod:`harness.revocation.log`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from harness.revocation.registry import KINDS, Registry
from harness.revocation.responder import FAULTS, answer_ocsp, build_crl

logger = logging.getLogger(__name__)

#: Larger request bodies are refused (an OCSP request is about a hundred bytes).
MAX_REQUEST = 64 * 1024
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PKIX_CRL = "application/pkix-crl"
#: How long :meth:`RevocationService.stop` waits for the server thread.
STOP_SECONDS = 5.0


class RevocationService:
    """Serve *registry*'s CRLs and OCSP answers until :meth:`stop` (or the ``with`` block ends)."""

    def __init__(self, registry: Registry, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = registry
        self.fault: str | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def ocsp_url(self) -> str:
        return f"{self.url}/ocsp"

    def crl_url(self, kind: str) -> str:
        return f"{self.url}/crl/{kind}.crl"

    def inject(self, fault: str | None) -> None:
        """Answer with *fault* from now on (``None``: answer normally)."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.fault = fault

    def start(self) -> RevocationService:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="myna-hil-revocation", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        # One request at a time, waiting without a timeout: no polling while idle, and
        # stop() ends the wait at once with a connection of its own (serve_forever's poll
        # cost a run up to a poll interval per stop).
        while not self._stopping.is_set():
            self._server.handle_request()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            host, port = self._server.server_address[:2]
            try:
                socket.create_connection((str(host), port), timeout=STOP_SECONDS).close()
            except OSError:
                logger.debug("could not wake the revocation service to stop it")
            self._thread.join(timeout=STOP_SECONDS)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> RevocationService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- called by the handler (one request at a time) --------------------------------------

    def crl(self, kind: str) -> bytes:
        with self._lock:
            return build_crl(self.registry, kind)

    def ocsp(self, request: bytes) -> bytes:
        with self._lock:
            return answer_ocsp(self.registry, request, self.fault)

    def unavailable(self, path: str) -> None:
        with self._lock:
            via = "ocsp" if path.startswith("/ocsp") else "crl"
            self.registry.log.decision(via, "error", detail="HTTP 503 (injected fault)")


def _handler_for(service: RevocationService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "myna-hil-revocation/1"
        # Keep-alive: a relying party asks again on the same connection (every answer
        # carries its Content-Length; a refusal closes the connection, its body unread).
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the second waits for
        # the client's delayed ACK (40 ms a request on Linux) once the connection is reused.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: HTTPStatus, body: bytes = b"", media: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            if status is not HTTPStatus.OK:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _fault(self) -> bool:
            if service.fault == "http-503":
                service.unavailable(self.path)
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"service unavailable\n")
                return True
            return False

        def do_GET(self) -> None:
            if self._fault():
                return
            path = urllib.parse.urlsplit(self.path).path
            for kind in KINDS:
                if path == f"/crl/{kind}.crl":
                    self._send(HTTPStatus.OK, service.crl(kind), PKIX_CRL)
                    return
            if path.startswith("/ocsp/"):
                encoded = urllib.parse.unquote(path[len("/ocsp/") :])
                try:
                    request = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError):
                    self._send(HTTPStatus.BAD_REQUEST, b"not a base64 OCSP request\n")
                    return
                self._send(HTTPStatus.OK, service.ocsp(request), OCSP_RESPONSE)
                return
            self._send(HTTPStatus.NOT_FOUND, b"not found\n")

        def do_POST(self) -> None:
            if self._fault():
                return
            if urllib.parse.urlsplit(self.path).path != "/ocsp":
                self._send(HTTPStatus.NOT_FOUND, b"not found\n")
                return
            if self.headers.get_content_type() != OCSP_REQUEST:
                self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"send application/ocsp-request\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._send(HTTPStatus.LENGTH_REQUIRED, b"Content-Length required\n")
                return
            if length <= 0:
                self._send(HTTPStatus.BAD_REQUEST, b"empty request\n")
                return
            if length > MAX_REQUEST:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"request too large\n")
                return
            self._send(HTTPStatus.OK, service.ocsp(self.rfile.read(length)), OCSP_RESPONSE)

    return Handler
