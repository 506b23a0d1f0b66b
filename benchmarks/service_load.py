"""Service load: ``opslens serve`` under 200 clients, against ``mlflow models serve`` on the
same registered versions and against a trivial FastAPI endpoint, for each of the five recipes.

Builds one project holding each recipe's bundled demo (MLflow tracking on, smaller data where
the demo is slow, as the service tests do), runs every analysis once (each registers a version
and makes it ``champion``; one its gate held back, as the small fleet demo's model is, gets
the alias through the MLflow client so every recipe is served). Then, each server in its own process on a loopback port, all started once
and kept running:

* ours:    ``opslens serve`` — ``POST /predict/<analysis>`` with one instance per request,
  for the first analysis of each recipe;
* peer:    ``mlflow models serve -m models:/<analysis>@champion --env-manager local`` —
  ``POST /invocations`` with ``{"dataframe_records": [instance]}`` (``--peers``: distribution
  and segments by default; the other recipes' pyfunc models take a frame, not an instance);
* trivial: a FastAPI app with the service's uvicorn settings (one process, default loop and
  HTTP parser, no access log) whose ``POST /predict/<analysis>`` reads the same body and
  answers a constant: the answer ours gave to that recipe's first instance.

A load generator in another process (``wrk`` if installed, else an httpx async client) keeps
``--connections`` clients (200) busy for ``--seconds`` (30) against each target in turn,
cycling through the recipe's demo instances (residual: 20 streams of 5 samples each).
``--repeats`` rounds (3), the targets interleaved within each round; figures are medians with
min-max. Then one client alone against ours for each recipe (``wrk -c1``, 5 s, 3 times): p50.

Prints requests/s, p50/p99 and errors of every target and the ratios; exits 1 unless, for
every recipe, ours has 0 errors, at least 80% of the trivial endpoint's throughput and a
one-client p50 of at most 2 ms, and for every peer recipe at least 10x the peer's throughput
with a lower p99.

Run: ``.venv/bin/python benchmarks/service_load.py [--seconds 30] [--connections 200]
[--repeats 3] [--recipes distribution,segments] [--peers distribution,segments]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.ui.conftest import RECIPES, all_recipes_project

BIN = Path(sys.executable).parent

WRK_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
init = function(args)
  i = math.random(#bodies)
end
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

#: the trivial endpoint: the service's uvicorn settings, the same body read, a constant answer
TRIVIAL_CHILD = r"""
import json, sys
import uvicorn
from fastapi import FastAPI, Request, Response
answers = {k: v.encode() for k, v in json.loads(open(sys.argv[2]).read()).items()}
app = FastAPI()
@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
@app.post("/predict/{analysis}")
async def predict(analysis: str, request: Request) -> Response:
    await request.body()
    return Response(answers[analysis], media_type="application/json")
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
uvicorn.Server(config).run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
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
    with urllib.request.urlopen(req, timeout=60) as r:
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
    threads = min(2, connections)
    try:
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
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


def build_project(folder: Path) -> Path:
    """``folder/project.yaml``: every recipe's demo analyses (smaller where slow, as the
    service tests have them), MLflow tracking on."""
    return all_recipes_project(folder, tracking='{uri: "sqlite:///mlflow.db"}')


def _bodies(recipe: str, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if recipe != "residual":
        return instances
    return [{**i, "stream": f"s{k}"} for k in range(20) for i in instances]  # 20 streams


def _median(runs: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    values = [r[key] for r in runs]
    return statistics.median(values), min(values), max(values)


def _said(runs: list[dict[str, Any]]) -> str:
    rps, p50, p99 = (_median(runs, k) for k in ("rps", "p50_ms", "p99_ms"))
    errors = sum(r["errors"] for r in runs)
    requests = sum(r["requests"] for r in runs)
    return (
        f"{rps[0]:7.0f} req/s ({rps[1]:.0f}-{rps[2]:.0f})  p50 {p50[0]:7.1f} ms  "
        f"p99 {p99[0]:7.1f} ms ({p99[1]:.0f}-{p99[2]:.0f})  errors {errors} of {requests:,}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--peers", default="distribution,segments")
    parser.add_argument(
        "--folder", type=Path, help="build the project here and keep it; reused if already built"
    )
    args = parser.parse_args()
    recipes = [r for r in RECIPES if r in args.recipes.split(",")]
    peers = [r for r in recipes if r in args.peers.split(",")]

    import mlflow

    from opslens.api import load_project
    from opslens.recipes import get_recipe
    from opslens.runner import load_input, run_analysis

    folder = args.folder or Path(tempfile.mkdtemp(prefix="opslens-service-load-"))
    built = (folder / "mlflow.db").exists()
    folder.mkdir(parents=True, exist_ok=True)
    project = load_project(folder / "project.yaml" if built else build_project(folder))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": project.tracking_uri(),
        "PYTHONWARNINGS": "ignore",
    }
    chosen: dict[str, Any] = {}  # recipe -> its first analysis
    for analysis in project.analyses:
        chosen.setdefault(analysis.recipe, analysis)
    t0 = time.perf_counter()
    bodies: dict[str, list[str]] = {}
    inputs: dict[str, list[dict[str, Any]]] = {}
    for recipe in recipes:
        analysis = chosen[recipe]
        if not built:
            run_analysis(project, analysis.name)
        spec = get_recipe(recipe).demo
        assert spec is not None and spec.instances is not None
        inputs[recipe] = spec.instances(load_input(analysis).frame, analysis)
        client = mlflow.MlflowClient(project.tracking_uri())
        try:
            client.get_model_version_by_alias(analysis.name, "champion")
        except mlflow.exceptions.MlflowException:  # held back by its baseline: serve it anyway
            found = client.search_model_versions(f"name='{analysis.name}'")
            newest = max(int(v.version) for v in found)
            client.set_registered_model_alias(analysis.name, "champion", str(newest))
    train_s = time.perf_counter() - t0

    procs: list[subprocess.Popen[bytes]] = []

    def start(cmd: list[str], ready: str) -> None:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the server and what it forks
        )
        procs.append(proc)
        wait_ready(ready, proc)

    targets: dict[str, tuple[str, list[str]]] = {}
    one_client: dict[str, list[dict[str, Any]]] = {}
    try:
        port = free_port()
        ours = f"http://127.0.0.1:{port}"
        start(
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
            f"{ours}/health",
        )
        answers = {}
        for recipe in recipes:
            url = f"{ours}/predict/{chosen[recipe].name}"
            kept = []  # the demo's instances the model answers (it also shows refused ones)
            for instance in inputs[recipe]:
                try:
                    got = post(url, json.dumps(_bodies(recipe, [instance])[0], default=str))
                except urllib.error.HTTPError:
                    continue
                answers.setdefault(chosen[recipe].name, json.dumps(got))
                kept.append(instance)
            if not kept:
                print(f"FAIL: {recipe}: none of the demo's instances is answered")
                return 1
            inputs[recipe] = kept[:5]
            bodies[recipe] = [json.dumps(i, default=str) for i in _bodies(recipe, kept[:5])]
            targets[f"opslens {recipe}"] = (url, bodies[recipe])
        trivial_port = free_port()
        (folder / "trivial.json").write_text(json.dumps(answers))
        start(
            [sys.executable, "-c", TRIVIAL_CHILD, str(trivial_port), str(folder / "trivial.json")],
            f"http://127.0.0.1:{trivial_port}/health",
        )
        for recipe in recipes:
            url = f"http://127.0.0.1:{trivial_port}/predict/{chosen[recipe].name}"
            targets[f"trivial {recipe}"] = (url, bodies[recipe])
        for recipe in peers:
            peer_port = free_port()
            name = chosen[recipe].name
            start(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    f"models:/{name}@champion",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(peer_port),
                ],
                f"http://127.0.0.1:{peer_port}/ping",
            )
            url = f"http://127.0.0.1:{peer_port}/invocations"
            records = [json.dumps({"dataframe_records": [i]}, default=str) for i in inputs[recipe]]
            post(url, records[0])  # answers at all
            targets[f"mlflow {recipe}"] = (url, records)

        for url, sent in targets.values():  # warm-up
            load(url, sent, min(3.0, args.seconds), args.connections)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(args.repeats):  # the targets interleaved within each round
            for name, (url, sent) in targets.items():
                results[name].append(load(url, sent, args.seconds, args.connections))
        for _ in range(args.repeats):
            for recipe in recipes:
                url, sent = targets[f"opslens {recipe}"]
                one_client.setdefault(recipe, []).append(load(url, sent, 5.0, 1))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)

    tool = next(iter(results.values()))[0]["tool"]
    print(
        f"{len(recipes)} recipes trained and registered in {train_s:.0f} s; {args.connections} "
        f"clients x {args.seconds:.0f} s per target, {args.repeats} rounds interleaved, load by "
        f"{tool}; medians (min-max); machine load average now {os.getloadavg()[0]:.1f}"
    )
    for name, runs in results.items():
        print(f"{name:24s}: {_said(runs)}")
    failed = []
    for recipe in recipes:
        ours_runs = results[f"opslens {recipe}"]
        rps = _median(ours_runs, "rps")[0]
        trivial = _median(results[f"trivial {recipe}"], "rps")[0]
        p50 = _median(one_client[recipe], "p50_ms")
        errors = sum(r["errors"] for r in ours_runs) + sum(r["errors"] for r in one_client[recipe])
        said = (
            f"{recipe:12s}: {rps / trivial:5.0%} of the trivial endpoint; one client p50 "
            f"{p50[0]:.2f} ms ({p50[1]:.2f}-{p50[2]:.2f})"
        )
        if not rps or rps < 0.8 * trivial:
            failed.append(f"{recipe}: {rps / trivial:.0%} of the trivial endpoint, below 80%")
        if p50[0] > 2.0:
            failed.append(f"{recipe}: one-client p50 {p50[0]:.2f} ms, above 2 ms")
        if errors or not all(r["requests"] for r in ours_runs):
            failed.append(f"{recipe}: {errors} errors, or a run with no request answered")
        if recipe in peers:
            peer = results[f"mlflow {recipe}"]
            ratio = rps / max(_median(peer, "rps")[0], 1e-9)
            p99 = _median(ours_runs, "p99_ms")[0]
            peer_p99 = _median(peer, "p99_ms")[0]
            said += f"; {ratio:.1f}x mlflow serve, p99 {peer_p99 / max(p99, 1e-9):.1f}x lower"
            if ratio < 10.0:
                failed.append(f"{recipe}: {ratio:.1f}x mlflow serve, below 10x")
            if p99 >= peer_p99:
                failed.append(f"{recipe}: p99 {p99:.0f} ms, not below mlflow's {peer_p99:.0f} ms")
        print(said)
    for reason in failed:
        print(f"FAIL: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
