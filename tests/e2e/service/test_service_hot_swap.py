"""A hot swap under 200 concurrent clients: no request lost, no versions mixed.

A real server process (uvicorn, the service's app, its poller every 0.1 s) serves one
analysis whose versions are told apart by their answers (version ``v`` answers
``y = v * x``); the current version is the content of a file, read by the model source as
the service reads a registry alias, and loading version 2 takes 0.3 s. 200 clients post
for 4 s; after 1.5 s the file says ``2``. What the service guarantees, and what is asserted:

* every request is answered 200 (none dropped, none refused while the model is reloaded);
* each answer names its version and was made by it (``y == version * x``: never mixed);
* no answer of version 2 before the promotion;
* once the first answer of version 2 has come back, no request sent after it is answered
  by version 1 (the swap is one assignment: a request takes the model it finds when it is
  answered, so old answers come only from requests received before the swap completed).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.service.helpers import wait_for

ROOT = Path(__file__).resolve().parents[3]

SERVER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import uvicorn
from opslens.online.service import ServiceSettings, create_app
from opslens.online.service.served import Release
from tests.e2e.service.helpers import Scaled

pointer_file = Path(sys.argv[2])

class FileSource:
    alias = "champion"
    def analyses(self):
        return {"eta": "scaled"}
    def pointer(self, analysis):  # as cheap as asking a registry for an alias
        return pointer_file.read_text().strip()
    def load(self, analysis, pointer):
        if pointer != "1":
            time.sleep(0.3)  # a real load takes a while; requests go on meanwhile
        return Release(Scaled(float(pointer)), pointer, f"run-{pointer}", "file")

app = create_app(ServiceSettings(poll_seconds=0.1), source=FileSource())
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                        access_log=False)
uvicorn.Server(config).run()
"""

CLIENTS = 200
SECONDS = 4.0
PROMOTE_AFTER = 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, bytes]:
    """One ``POST /predict/eta`` on a kept-alive connection (a bare HTTP/1.1 client: httpx
    in this process could not keep 200 clients busy)."""
    head = (
        "POST /predict/eta HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(":") for h in lines) if k.lower() == "content-length"
    )
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def _load(port: int, promote: Path) -> tuple[list[dict[str, Any]], float]:
    """Every request's send and receive times, status and answer; when the promotion was."""
    rows: list[dict[str, Any]] = []
    stop = time.monotonic() + SECONDS
    promoted = [0.0]

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        try:
            while time.monotonic() < stop:
                x = float(k * 100_000 + i)
                sent = time.monotonic()
                try:
                    status, raw = await _post(
                        reader, writer, json.dumps({"x": x, "label": f"c{k}"}).encode()
                    )
                    body = json.loads(raw) if status == 200 else raw.decode()
                except (OSError, asyncio.IncompleteReadError) as e:
                    status, body = 0, repr(e)
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                rows.append(
                    {
                        "status": status,
                        "body": body,
                        "x": x,
                        "sent": sent,
                        "received": time.monotonic(),
                    }
                )
                i += 1
        finally:
            writer.close()

    async def promoter() -> None:
        await asyncio.sleep(PROMOTE_AFTER)
        promoted[0] = time.monotonic()
        promote.write_text("2")

    await asyncio.gather(promoter(), *(client(k) for k in range(CLIENTS)))
    return rows, promoted[0]


@pytest.mark.slow
def test_a_promotion_under_200_clients_loses_none_and_mixes_none(tmp_path: Path) -> None:
    pointer = tmp_path / "pointer"
    pointer.write_text("1")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(pointer), str(ROOT)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def ready() -> bool:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                return httpx.get(f"{url}/health", timeout=1).json()["loaded"] == 1
            except httpx.HTTPError:
                return False

        wait_for(ready, "the server to start", seconds=60)
        rows, promoted = asyncio.run(_load(port, pointer))
    finally:
        server.terminate()
        server.wait(timeout=30)

    failed = [r for r in rows if r["status"] != 200]
    assert failed == [], f"{len(failed)} of {len(rows)} requests failed, e.g. {failed[:3]}"
    assert len(rows) >= 5 * CLIENTS  # the clients kept the server busy
    for r in rows:  # each answer names its version and was made by it
        version = r["body"]["version"]
        assert version in ("1", "2")
        assert r["body"]["answer"]["y"] == float(version) * r["x"]
    new = [r for r in rows if r["body"]["version"] == "2"]
    old = [r for r in rows if r["body"]["version"] == "1"]
    assert old and new, "the load ran on both sides of the swap"
    assert min(r["received"] for r in new) > promoted  # nothing new before the promotion
    first_new = min(r["received"] for r in new)
    late_old = [r for r in old if r["sent"] > first_new]
    assert late_old == [], f"{len(late_old)} requests sent after the swap answered by version 1"
