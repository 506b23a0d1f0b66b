"""The service's own CPU per prediction request, in process: no HTTP server, no load generator.

On a shared machine a load test's throughput ratio depends on who gets the cores; the CPU
the service spends per request does not, much. This builds the recipes' demo project as
``service_load.py`` does (MLflow on, smaller demos; ``--folder``: build it there and keep
it, or reuse one already built), creates the service's ASGI application
(``create_app``) and drives ``POST /predict/<analysis>`` through the whole middleware stack
(the fast path in front of FastAPI) with in-memory ``receive``/``send``, cycling through
the demo instances the model answers (as ``service_load.py`` sends them). It prints the CPU
time (``process_time``) per request of each recipe, median of 3 rounds (min–max); with
``--stub`` the predictor's ``predict_one`` is replaced by a constant answer, leaving the
service's own share.

A peer version (``--peer-src ../main/src``) runs the same rounds in a child process with
that source first on ``sys.path``, interleaved with this checkout's.

Run: ``.venv/bin/python benchmarks/service_cpu.py [--recipes segments,propensity]
[--requests 4000] [--folder DIR] [--peer-src DIR] [--stub]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, json, logging, os, sys, time
from pathlib import Path
logging.disable(logging.WARNING)
from opslens.online.service.app import create_app
from opslens.online.service.settings import ServiceSettings
folder, analysis, requests, stub = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
os.chdir(folder)
bodies = [b.encode() for b in json.loads((folder / "bodies.json").read_text())[analysis]]
stack = create_app(ServiceSettings(project=Path("project.yaml"))).build_middleware_stack()
if stub:
    served = stack.predictions.book.get(analysis)
    answer = served.predictor.predict_one(json.loads(bodies[0]))
    object.__setattr__(served.predictor, "predict_one", lambda instance: answer)
path = f"/predict/{analysis}"

async def one(body):
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    sent = []
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}
    await stack(scope, receive, send)
    return sent[0]["status"]

async def main():
    kept = [b for b in bodies if await one(b) == 200]
    for i in range(300):  # warm-up (the pace of inline answers, caches)
        await one(kept[i % len(kept)])
    out = []
    for _ in range(3):
        started = time.process_time()
        for i in range(requests):
            await one(kept[i % len(kept)])
        out.append((time.process_time() - started) / requests)
    print(json.dumps(out))

asyncio.run(main())
"""


def _build(folder: Path, recipes: list[str]) -> dict[str, str]:
    """Train and register each recipe's first demo analysis; its name per recipe, and the
    demo instances' JSON bodies in ``folder/bodies.json``."""
    sys.path.insert(0, str(ROOT))
    import mlflow
    from tests.unit.ui.conftest import all_recipes_project

    from opslens.api import load_project
    from opslens.recipes import get_recipe
    from opslens.runner import load_input, run_analysis

    built = (folder / "bodies.json").exists()
    if not built:
        all_recipes_project(folder, recipes=tuple(recipes), tracking='{uri: "sqlite:///mlflow.db"}')
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        project = load_project(folder / "project.yaml")
        chosen: dict[str, Any] = {}
        for analysis in project.analyses:
            chosen.setdefault(analysis.recipe, analysis)
        if built:
            return {r: chosen[r].name for r in recipes}
        bodies = {}
        for recipe in recipes:
            analysis = chosen[recipe]
            run_analysis(project, analysis.name)
            client = mlflow.MlflowClient(project.tracking_uri())
            try:
                client.get_model_version_by_alias(analysis.name, "champion")
            except mlflow.exceptions.MlflowException:  # held back by its baseline: serve it
                found = client.search_model_versions(f"name='{analysis.name}'")
                newest = max(int(v.version) for v in found)
                client.set_registered_model_alias(analysis.name, "champion", str(newest))
            spec = get_recipe(recipe).demo
            assert spec is not None and spec.instances is not None
            instances = spec.instances(load_input(analysis).frame, analysis)[:5]
            bodies[analysis.name] = [json.dumps(i, default=str) for i in instances]
        (folder / "bodies.json").write_text(json.dumps(bodies))
        return {r: chosen[r].name for r in recipes}
    finally:
        os.chdir(cwd)


def _rounds(src: Path, folder: Path, analysis: str, requests: int, stub: bool) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), analysis, str(requests), "1" if stub else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(v) for v in json.loads(done.stdout.strip().splitlines()[-1])]


def _cell(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1e6:.1f} µs ({min(values) * 1e6:.1f}–"
        f"{max(values) * 1e6:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--recipes", default="segments,propensity")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--folder", type=Path, help="build the project here and keep it")
    parser.add_argument("--peer-src", type=Path, help="the src folder of a version to compare")
    parser.add_argument("--stub", action="store_true", help="a constant answer per request")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    recipes = args.recipes.split(",")
    folder = (args.folder or Path(tempfile.mkdtemp(prefix="opslens-service-cpu-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    names = _build(folder, recipes)
    sources = {"ours": ROOT / "src", **({"peer": args.peer_src.resolve()} if args.peer_src else {})}
    print(
        f"CPU per POST /predict request in process ({args.requests} requests x 3 rounds"
        f"{', predictor stubbed' if args.stub else ''}), median (min-max); load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    for recipe in recipes:
        times = {
            name: _rounds(src, folder, names[recipe], args.requests, args.stub)
            for name, src in sources.items()
        }
        line = f"{recipe:12s} ours {_cell(times['ours'])}"
        if "peer" in times:
            ratio = statistics.median(times["ours"]) / statistics.median(times["peer"])
            line += f"; peer {_cell(times['peer'])}; ours/peer {ratio:.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
