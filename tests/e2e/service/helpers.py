"""What the service tests share: small predictors, an in-memory model source, a live server.

``LiveServer`` runs uvicorn in a thread on a free loopback port, so every
test talks real HTTP; leaving the ``with`` block stops it (lifespan shutdown
included).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import polars as pl
import uvicorn
from fastapi import FastAPI

from opslens.core.predictor import BasePredictor, Predictor
from opslens.errors import InstanceError
from opslens.online.service.served import Release


class Scaled(BasePredictor):
    """Stateless: ``y = factor * x`` (a version's factor tells which version answered)."""

    recipe = "scaled"

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def input_schema(self) -> dict[str, str]:
        return {"x": "number", "label": "string"}

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(y=pl.col("x") * self.factor)

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        x = self.check_instance(instance)["x"]
        if x < 0:
            raise InstanceError(f"x is {x}, below 0", fix="send x >= 0")
        return {"y": self.factor * x, "label": instance["label"]}


class RunLength(BasePredictor):
    """Stateful: counts samples ``n`` and the run of ``x > limit``; ``alert`` once it reaches ``sustain``."""

    recipe = "runlength"

    def __init__(self, limit: float = 1.0, sustain: int = 3) -> None:
        self.limit = limit
        self.sustain = sustain

    def input_schema(self) -> dict[str, str]:
        return {"x": "number"}

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        state: dict[str, Any] | None = None
        rows = []
        for instance in frame.iter_rows(named=True):
            answer, state = self.step(instance, state)
            rows.append(answer)
        return pl.DataFrame(rows)

    def predict_one(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        return self.step(instance, None)[0]

    def step(
        self, instance: Mapping[str, Any], state: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        x = float(self.check_instance(instance)["x"])
        if x < 0:
            raise InstanceError(f"x is {x}, below 0", fix="send x >= 0")
        state = state or {"n": 0, "run": 0}
        n, run = int(state["n"]) + 1, int(state["run"]) + 1 if x > self.limit else 0
        level = "alert" if run >= self.sustain else "ok"
        return {"n": n, "run": run, "level": level}, {"n": n, "run": run}


class MemorySource:
    """Versions of models held in memory; ``promote`` moves an analysis's alias."""

    alias = "current"

    def __init__(self, versions: dict[str, dict[str, Predictor]], current: dict[str, str]) -> None:
        self.versions = versions
        self.current = dict(current)
        self.loads = 0

    def analyses(self) -> dict[str, str]:
        return {a: next(iter(v.values())).recipe for a, v in self.versions.items()}

    def pointer(self, analysis: str) -> str | None:
        return self.current.get(analysis)

    def load(self, analysis: str, pointer: str) -> Release:
        self.loads += 1
        return Release(self.versions[analysis][pointer], pointer, f"run-{pointer}", "memory")

    def promote(self, analysis: str, version: str) -> None:
        self.current[analysis] = version


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {seconds:.0f} s"
        time.sleep(0.01)


class LiveServer:
    """``app`` served by uvicorn on ``127.0.0.1:<free port>`` in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"
