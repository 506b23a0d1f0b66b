"""Debian's Chromium for the browser tests: its path, or a skip (a failure when CI=true);
the app started as a user starts it (:func:`opslens_ui`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def chromium() -> str:
    """The Chromium executable; with CI=true a missing one fails the test, elsewhere it skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed and CI=true requires it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


@contextlib.contextmanager
def opslens_ui(folder: Path, project: str = "project.yaml") -> Iterator[str]:
    """`opslens ui -p project --port N` started in ``folder`` on a free loopback port, as a
    user would; yields its URL once its health endpoint answers (RuntimeError after 60 s)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "opslens.cli", "ui", "-p", project, "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # bounded: the server says it is up on its health endpoint
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("opslens ui did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
