"""A planted fault for the residual checker, and the levels the sustain rules predict for it.

The fault is written on one axis from a trained predictor: ``lead`` samples on
the trend (residual 0), ``alert_run`` samples halfway between MinC and MaxC, then
``error_run`` samples well above MaxC, then ``tail`` samples on the trend again.
The expected levels are derived from the rules in words, not from the checker's code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from opslens.recipes.residual.predictor import ResidualPredictor

PROJECT = """
tracking: {{enabled: false}}
runs_dir: {runs}
analyses:
  - name: axes
    recipe: residual
    source: {{kind: synthetic, generator: axes, seed: 3, options: {{n_samples: 800}}}}
    columns: {{time: ts, metrics: [axis1, axis2, axis3]}}
    params: {{train_end: "80%", model: {{axes: {{axis3: auto}}}}}}
"""


def file_project(name: str, params: str) -> str:
    """The project file of one residual analysis ``name`` on ``train.parquet`` (``ts``,
    ``axis1``, ``axis2``) with ``params`` (YAML flow text), tracked in ``mlflow.db``.

    Example:
        >>> "params: {model: {type: median}}" in file_project("press", "{model: {type: median}}")
        True
    """
    return f"""
tracking: {{uri: "sqlite:///mlflow.db"}}
analyses:
  - name: {name}
    recipe: residual
    source: {{kind: file, path: train.parquet}}
    columns: {{time: ts, metrics: [axis1, axis2]}}
    params: {params}
"""


def trained_project(folder: Path) -> Path:
    """A project with one complete residual run in ``folder``; returns the project file."""
    from opslens.api import load_project
    from opslens.runner import run_analysis

    path = folder / "project.yaml"
    path.write_text(PROJECT.format(runs=folder / "runs"))
    run_analysis(load_project(path), "axes")
    return path


def fault_samples(
    p: ResidualPredictor,
    *,
    axis: str = "axis2",
    start: datetime = datetime(2025, 9, 2),
    dt: float = 2.0,
    lead: int = 10,
    extra_alert: int = 3,
    extra_error: int = 2,
    tail: int = 5,
    stream: str = "m1",
) -> tuple[list[dict[str, Any]], list[str]]:
    """The samples of one stream (``seq`` 1, 2, ...) and the overall level expected for each."""
    limits = p.thresholds[axis]
    minc, maxc = limits["MinC"], limits["MaxC"]
    t_long, t_short = limits["T_long_steps"], limits["T_short_steps"]
    assert 0 < minc < maxc
    alert_run, error_run = t_long + extra_alert, t_short + extra_error
    residuals = (
        [0.0] * lead
        + [(minc + maxc) / 2] * alert_run
        + [maxc + (maxc - minc)] * error_run
        + [0.0] * tail
    )
    samples, expected = [], []
    for k, r in enumerate(residuals):
        ts = (start + timedelta(seconds=k * dt)).isoformat()
        on_trend = p.predict_one({"ts": ts, **{a: 0.0 for a in p.axes}})
        sample: dict[str, Any] = {"ts": ts, "stream": stream, "seq": k + 1}
        for a in p.axes:
            sample[a] = on_trend[f"{a}_predicted"] + (r if a == axis else 0.0)
        samples.append(sample)
        if k < lead or k >= lead + alert_run + error_run:
            expected.append("ok")  # on the trend: no run
        elif k < lead + alert_run:
            # the j-th sample above MinC (1-based): alert from the T_long-th on
            expected.append("alert" if k - lead + 1 >= t_long else "ok")
        else:
            # above MaxC too: error from the T_short-th such sample; the run above MinC
            # is already longer than T_long, so alert before that
            expected.append("error" if k - lead - alert_run + 1 >= t_short else "alert")
    return samples, expected


def transitions(levels: list[str]) -> list[tuple[int, str]]:
    """``(sample index, new level)`` at each change, starting with the first sample's level."""
    out = [(0, levels[0])]
    for i in range(1, len(levels)):
        if levels[i] != levels[i - 1]:
            out.append((i, levels[i]))
    return out
