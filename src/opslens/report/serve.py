"""Serve a folder (a run's report, or the reports index) on a loopback port.

Example:
    >>> import tempfile, pathlib, urllib.request
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "report.html").write_text("<html>hi</html>")
    >>> with ReportServer(d, port=0) as server:
    ...     urllib.request.urlopen(server.url("report.html")).read()
    b'<html>hi</html>'
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from opslens.errors import ConfigError

__all__ = ["ReportServer"]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class ReportServer:
    """Serves ``folder`` on ``host:port`` (port 0: a free one) in a background thread."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = functools.partial(_Quiet, directory=str(folder))
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise ConfigError(
                f"cannot serve on {host}:{port} ({e.strerror})",
                fix="choose another --port, or 0 for a free one",
            ) from None
        self.host, self.port = host, int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "") -> str:
        """The address of ``path`` on this server."""
        return f"http://{self.host}:{self.port}/{path}"

    def __enter__(self) -> ReportServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
