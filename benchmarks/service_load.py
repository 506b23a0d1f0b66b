"""Service load: ``opslens serve`` against ``mlflow models serve`` on the same registered model.

Runs the distribution demo project (``opslens demo``'s trip-eta, MLflow
tracking on), which registers ``trip-eta`` with the alias ``current``. Then,
one server at a time, each in its own process on a loopback port:

* ours:  ``opslens serve`` — ``POST /predict/trip-eta`` with one instance
* peer:  ``mlflow models serve -m models:/trip-eta@current --env-manager local``
  — ``POST /invocations`` with ``{"dataframe_records": [instance]}``

and a load generator in another process (``wrk`` if installed, else an httpx
async client) keeps 200 connections busy for 30 s each, cycling through the
demo's instances. Prints requests/s, p50/p99 latency and errors of both and the
throughput ratio; exits 1 unless ours has zero errors, at least 5x the peer's
throughput and a p99 no worse.

Run: ``.venv/bin/python benchmarks/service_load.py [--seconds 30] [--connections 200] [--rows 60000]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent

WRK_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""

HTTPX_CHILD = r"""
import asyncio, json, sys, time
import httpx
url, seconds, connections, bodies = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
lat, errors = [], 0
async def worker(client, k, stop):
    global errors
    i = k
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        try:
            r = await client.post(url, content=bodies[i % len(bodies)], headers={"Content-Type": "application/json"})
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        lat.append(time.perf_counter() - t0)
        errors += not ok
        i += 1
async def main():
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client, k, t0 + seconds) for k in range(connections)))
        return time.perf_counter() - t0
wall = asyncio.run(main())
lat.sort()
print(json.dumps({"rps": len(lat) / wall, "p50_ms": 1e3 * lat[len(lat) // 2],
                  "p99_ms": 1e3 * lat[int(len(lat) * 0.99)], "errors": errors, "requests": len(lat)}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def post(url: str, body: str) -> Any:
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def load(url: str, bodies: list[str], seconds: float, connections: int) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms) and errors of ``connections`` clients for ``seconds``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                HTTPX_CHILD,
                url,
                str(seconds),
                str(connections),
                json.dumps(bodies),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return dict(json.loads(out.strip().splitlines()[-1]), tool="httpx")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % ", ".join(json.dumps(b) for b in bodies))
    try:
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{int(seconds)}s",
                "--timeout",
                "20s",
                "--latency",
                "-s",
                f.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(f.name)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(lat["50"]),
        "p99_ms": _ms(lat["99"]),
        "errors": errors,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "tool": "wrk",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rows", type=int, default=60_000)
    args = parser.parse_args()

    from opslens.api import load_project
    from opslens.cli.demo import demo_file_text
    from opslens.recipes import get_recipe
    from opslens.runner import load_input, run_analysis
    from opslens.tracking.models import load_registered

    folder = Path(tempfile.mkdtemp(prefix="opslens-service-load-"))
    text = demo_file_text("distribution").replace("n_rows: 60000", f"n_rows: {args.rows}")
    (folder / "project.yaml").write_text(text)
    project = load_project(folder / "project.yaml")
    t0 = time.perf_counter()
    run_analysis(project, "trip-eta")
    train_s = time.perf_counter() - t0
    analysis = project.analysis("trip-eta")
    spec = get_recipe("distribution").demo
    assert spec is not None and spec.instances is not None
    instances = spec.instances(load_input(analysis).frame, analysis)[:5]
    inputs = list(analysis.columns.categorical)
    instances = [{k: i[k] for k in inputs} for i in instances]
    library = load_registered(project.tracking_uri(), "trip-eta").predictor
    expected = [library.predict_one(i) for i in instances]

    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": project.tracking_uri(),
        "PYTHONWARNINGS": "ignore",
    }
    results: dict[str, dict[str, Any]] = {}
    port = free_port()
    servers = {
        "opslens serve": (
            [
                sys.executable,
                "-m",
                "opslens.cli",
                "serve",
                "-p",
                "project.yaml",
                "--port",
                str(port),
            ],
            f"http://127.0.0.1:{port}/health",
            f"http://127.0.0.1:{port}/predict/trip-eta",
            [json.dumps(i) for i in instances],
        ),
        "mlflow models serve": (
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/trip-eta@current",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            f"http://127.0.0.1:{port}/ping",
            f"http://127.0.0.1:{port}/invocations",
            [json.dumps({"dataframe_records": [i]}) for i in instances],
        ),
    }
    for name, (cmd, ready, url, bodies) in servers.items():
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the server and any workers it forks
        )
        try:
            wait_ready(ready, proc)
            post(url, bodies[0])  # answers at all
            if name == "opslens serve":
                got = [post(url, b)["answer"] for b in bodies]
                if got != expected:
                    print("FAIL: the service's answers differ from predict_one's")
                    return 1
            load(url, bodies, min(3.0, args.seconds), args.connections)  # warm-up
            before = os.getloadavg()[0]
            results[name] = load(url, bodies, args.seconds, args.connections)
            results[name]["load"] = (before, os.getloadavg()[0])
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    ours, peer = results["opslens serve"], results["mlflow models serve"]
    print(
        f"trip-eta trained on {args.rows:,} rows in {train_s:.1f} s; "
        f"{args.connections} connections x {args.seconds:.0f} s each, load by {ours['tool']}"
    )
    for name, r in results.items():
        print(
            f"{name:20s}: {r['rps']:8.0f} req/s   p50 {r['p50_ms']:7.1f} ms   "
            f"p99 {r['p99_ms']:7.1f} ms   errors {r['errors']} of {r['requests']:,}   "
            f"(machine load {r['load'][0]:.1f} -> {r['load'][1]:.1f})"
        )
    ratio = ours["rps"] / peer["rps"]
    print(
        f"throughput ratio    : {ratio:6.1f}x   p99 ratio (peer/ours) {peer['p99_ms'] / ours['p99_ms']:6.1f}x"
    )
    failed = []
    if ours["errors"]:
        failed.append(f"{ours['errors']} errors under load")
    if ratio < 5.0:
        failed.append(f"throughput ratio {ratio:.1f}x is below 5x")
    if ours["p99_ms"] > peer["p99_ms"]:
        failed.append(
            f"p99 {ours['p99_ms']:.1f} ms is worse than the peer's {peer['p99_ms']:.1f} ms"
        )
    for reason in failed:
        print(f"FAIL: {reason}")
    shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
