"""The service under the issue's bad requests: /health latency while each is sent, and the
service's memory after them against idle.

The service (one analysis, ``Scaled`` from the tests' helpers, behind a token) runs in a
process of its own on a loopback port. For each bad request (a 50 MB body, a JSON NaN,
100,000 nested brackets, a batch over the limit, an unknown analysis, a missing and a
wrong token) the request is sent from one thread while another asks ``/health`` every
5 ms; the slowest /health answer during the request is printed with the request's status.
Then the service's resident memory against its idle memory (measured before the first
request). Each case is run 3 times; the medians are printed. Exits 1 if a status is not
the expected one, a /health took more than 50 ms, or memory grew by more than 50 MB.

Run: ``.venv/bin/python benchmarks/bad_inputs.py``
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVER = """
import os, sys, uvicorn
os.environ["BENCH_TOKEN"] = "right"
from opslens.online.service import ServiceSettings, create_app
from tests.e2e.service.helpers import MemorySource, Scaled
source = MemorySource({"scaled": {"1": Scaled(1.0)}}, current={"scaled": "1"})
app = create_app(ServiceSettings(max_batch=5, token_env="BENCH_TOKEN"), source=source)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
AUTH = {"Authorization": "Bearer right", "Content-Type": "application/json"}
ONE = b'{"x": 1, "label": "a"}'
CASES = [
    ("50 MB body", "/predict/scaled", b'{"x": "' + b"9" * 50_000_000 + b'"}', AUTH, 413),
    ("JSON NaN", "/predict/scaled", b'{"x": NaN, "label": "a"}', AUTH, 422),
    ("100,000 nested brackets", "/predict/scaled", b"[" * 100_000 + b"]" * 100_000, AUTH, 422),
    (
        "batch over the limit",
        "/predict/scaled",
        b'{"instances": [' + b",".join([ONE] * 6) + b"]}",
        AUTH,
        413,
    ),
    ("unknown analysis", "/predict/nope", ONE, AUTH, 404),
    ("missing token", "/predict/scaled", ONE, {}, 401),
    ("wrong token", "/predict/scaled", ONE, {**AUTH, "Authorization": "Bearer wrong"}, 401),
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_case(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    """The request's status and the slowest /health (ms) while it was in flight."""
    done = threading.Event()
    status: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            status.append(c.post(path, content=body, headers=headers).status_code)
        done.set()

    worst = 0.0
    with httpx.Client(base_url=url, timeout=10) as health:
        health.get("/health")
        sender = threading.Thread(target=send)
        sender.start()
        while not done.is_set():
            t = time.perf_counter()
            health.get("/health")
            worst = max(worst, (time.perf_counter() - t) * 1000)
            time.sleep(0.005)
        sender.join()
    return status[0], worst


def main() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    ok = True
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for _ in range(3):
            httpx.post(url + "/predict/scaled", content=ONE, headers=AUTH)
        idle = rss_mb(server.pid)
        print(f"{'request':<26}{'status':>8}{'expected':>10}{'worst /health ms (median of 3)':>34}")
        for name, path, body, headers, expected in CASES:
            runs = [one_case(url, path, body, headers) for _ in range(3)]
            statuses = {s for s, _ in runs}
            worst = statistics.median(w for _, w in runs)
            ok &= statuses == {expected} and worst <= 50
            print(
                f"{name:<26}{'/'.join(map(str, sorted(statuses))):>8}{expected:>10}{worst:>34.1f}"
            )
        after = rss_mb(server.pid)
        ok &= after - idle <= 50
        print(
            f"memory: idle {idle:.0f} MB, after every case x3 {after:.0f} MB (+{after - idle:.1f} MB)"
        )
    finally:
        server.terminate()
        server.wait(30)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
