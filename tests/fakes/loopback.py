"""The HTTP plumbing the loopback fakes share: a JSON server on a free 127.0.0.1 port.

A subclass answers ``handle(method, path, headers, body) -> (status, extra headers,
payload)``; this class serves it from a daemon thread, stops at context exit (or at
interpreter exit, if a test forgets) and never listens beyond loopback.

Example:
    >>> import urllib.request
    >>> class Echo(JsonLoopback):
    ...     def handle(self, method, path, headers, body):
    ...         return 200, {}, {"path": path}
    >>> with Echo() as server:
    ...     urllib.request.urlopen(server.url + "/x").read()
    b'{"path": "/x"}'
"""

from __future__ import annotations

import atexit
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["JsonLoopback"]


class JsonLoopback:
    """Serve ``handle``'s JSON answers on ``http://127.0.0.1:<free port>``."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """Status, extra headers and the JSON payload (None: an empty body) of one request."""
        return 404, {}, {"error": f"no route {method} {path}"}

    def response_headers(self, request_headers: dict[str, str]) -> dict[str, str]:
        """Headers every answer carries (the content type by default)."""
        return {"Content-Type": "application/json; charset=utf-8"}

    def start(self) -> Self:
        """Serve on a free loopback port in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._stopped.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop serving (ending any wait a subclass does on ``_stopped``) and free the port."""
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def _handler(state: JsonLoopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = state.handle(self.command, self.path, headers, raw)
            data = b"" if payload is None else json.dumps(payload).encode()
            try:
                self.send_response(status)
                for name, value in {**state.response_headers(headers), **extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler
