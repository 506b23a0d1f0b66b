"""Online checker throughput: samples per second per stream, one at a time and in arrays.

Trains the residual recipe on the bundled synthetic axes (3 axes, linear trends, a
planted fault), then replays all ``--samples`` samples as one stream through

* the reference mode (today's checker: a trend per axis, MinC / MaxC and run lengths),
  one at a time (``OnlineChecker.update(sample)``, the JSON-ready state per stream) and
  in arrays (``OnlineChecker.update_many(frame)`` in blocks of ``--block`` samples);
* the streaming mode (``params.mode: streaming`` with its defaults: a warm-up of 750
  samples, then a rolling median of 288 per axis, two-sided limits, hold-off), the same
  two ways;
* the new families on the bundled pump (``generator: pump``, 4 axes): flow and pressure
  regressed on the pump's speed and every axis per operating mode (``mode_column``),
  per-mode limits on both sides (``examples/residual/pump.yaml``'s ``pump-modes``), one
  at a time and in arrays, ``--samples`` samples of it replayed;
* the naive path a user would write, one at a time: scikit-learn ``LinearRegression.predict``
  on a one-row array per axis and a Python run-length counter per axis (reference levels).

One at a time and arrays give the same levels in each mode (checked). Each path is timed
three times, interleaved, in this process's CPU seconds by default (``--clock cpu``: what
a quiet machine gives as elapsed time, steady while other programs share the cores;
``--clock wall`` for elapsed time); prints the median samples/s with min–max and the ratios.

Run: ``.venv/bin/python benchmarks/online_checker.py [--samples 20000] [--block 1000]``
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from sklearn.linear_model import LinearRegression

from opslens.recipes import project_from_mapping
from opslens.recipes.residual import OnlineChecker, ResidualPredictor
from opslens.recipes.residual.params import StreamingParams
from opslens.runner import run_analysis
from opslens.synthetic.axes import make_axes
from opslens.synthetic.pump import make_pump


def _trained(folder: str, analysis: dict[str, Any]) -> ResidualPredictor:
    """The predictor of one residual analysis run in ``folder`` (no tracking)."""
    project = project_from_mapping(
        {"tracking": {"enabled": False}, "runs_dir": folder, "analyses": [analysis]}
    )
    predictor = run_analysis(project, analysis["name"]).predictor()
    assert isinstance(predictor, ResidualPredictor)
    return predictor


def train(folder: str, n: int) -> ResidualPredictor:
    """The bundled axes with the recipe's defaults (a line against time per axis)."""
    source = {"kind": "synthetic", "generator": "axes", "options": {"n_samples": n}}
    return _trained(
        folder, {"name": "axes", "recipe": "residual", "source": source, "columns": {"time": "ts"}}
    )


def train_pump(folder: str) -> ResidualPredictor:
    """The pump with models on other signals per mode, both sides, per-mode limits."""
    params = {
        "train_end": "50%",
        "model": {"mode_column": "mode", "regressors": {"flow": ["speed"], "pressure": ["speed"]}},
        "thresholds": {
            "direction": "both",
            "per_mode": True,
            "alert_seconds_default": 600,
            "error_seconds_default": 300,
        },
    }
    metrics = ["flow", "pressure", "temperature", "vibration"]
    return _trained(
        folder,
        {
            "name": "pump",
            "recipe": "residual",
            "source": {"kind": "synthetic", "generator": "pump", "seed": 0},
            "columns": {"time": "ts", "metrics": metrics},
            "params": params,
        },
    )


def naive(p: ResidualPredictor, samples: list[dict[str, object]]) -> list[str]:
    """Per sample: epoch → seconds, LinearRegression.predict per axis, run counters."""
    models = {}
    for axis, trend in p.models.items():
        lr = LinearRegression()
        lr.coef_, lr.intercept_ = np.array([trend.slope_]), trend.intercept_
        lr.n_features_in_ = 1
        models[axis] = lr
    runs = {a: [0, 0] for a in p.axes}
    out = []
    for s in samples:
        t = (
            datetime.fromisoformat(str(s["ts"])) - datetime(1970, 1, 1)
        ).total_seconds() - p.t0_us / 1e6
        worst = 0
        for axis, lr in models.items():
            lim = p.thresholds[axis]
            r = float(s[axis]) - float(lr.predict(np.array([[t]]))[0])  # type: ignore[arg-type]
            run = runs[axis]
            run[0] = run[0] + 1 if r > lim["MinC"] else 0
            run[1] = run[1] + 1 if r > lim["MaxC"] else 0
            level = (
                2 if run[1] >= lim["T_short_steps"] else 1 if run[0] >= lim["T_long_steps"] else 0
            )
            worst = max(worst, level)
        out.append(("ok", "alert", "error")[worst])
    return out


def _one(p: ResidualPredictor, samples: list[dict[str, object]]) -> tuple[float, list[str]]:
    checker = OnlineChecker(p)
    t0 = time.perf_counter()
    levels = [checker.update(s)["level"] for s in samples]
    return time.perf_counter() - t0, levels


def _arrays(p: ResidualPredictor, frame: pl.DataFrame, block: int) -> tuple[float, list[str]]:
    checker = OnlineChecker(p)
    t0 = time.perf_counter()
    parts = [checker.update_many(frame.slice(i, block)) for i in range(0, frame.height, block)]
    elapsed = time.perf_counter() - t0
    return elapsed, pl.concat(parts)["level"].to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--block", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: this process's CPU seconds (every thread), steady on a shared machine; "
        "wall: elapsed seconds",
    )
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        p = train(tmp, args.samples)
        pump = train_pump(tmp)
    streaming = ResidualPredictor(
        p.models, p.thresholds, time_field=p.time_field, t0_us=p.t0_us, streaming=StreamingParams()
    )
    frame = make_axes(seed=0, n_samples=args.samples).frame  # the whole series, replayed
    samples = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")).to_dicts()
    n = len(samples)
    pump_frame = make_pump(seed=0, days=28).frame.head(n).drop("fault")
    pump_samples = pump_frame.with_columns(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
    ).to_dicts()
    assert len(pump_samples) == n, f"the pump has fewer than {n} samples"
    paths = {
        "reference, one at a time": lambda: _one(p, samples),
        f"reference, arrays of {args.block}": lambda: _arrays(p, frame, args.block),
        "streaming, one at a time": lambda: _one(streaming, samples),
        f"streaming, arrays of {args.block}": lambda: _arrays(streaming, frame, args.block),
        "naive (sklearn per sample)": lambda: (lambda t0: (0.0, naive(p, samples)))(0),
        "pump per mode, one at a time": lambda: _one(pump, pump_samples),
        f"pump per mode, arrays of {args.block}": lambda: _arrays(pump, pump_frame, args.block),
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    levels: dict[str, list[str]] = {}
    for _ in range(args.repeats):  # interleaved
        for name, run in paths.items():
            t0 = clock()
            _, lv = run()
            times[name].append(clock() - t0)
            levels[name] = lv
    names = list(paths)
    assert levels[names[0]] == levels[names[1]], "reference: one at a time and arrays differ"
    assert levels[names[2]] == levels[names[3]], "streaming: one at a time and arrays differ"
    assert levels[names[5]] == levels[names[6]], "pump: one at a time and arrays differ"
    agree = float(np.mean(np.array(levels[names[0]]) == np.array(levels[names[4]])))
    print(f"{n} samples, 3 axes, one stream; median of {args.repeats} (min-max), interleaved")
    print(f"levels, reference: {dict(Counter(levels[names[0]]))}")
    print(f"levels, streaming: {dict(Counter(levels[names[2]]))}")
    print(f"levels, pump per mode (4 axes): {dict(Counter(levels[names[5]]))}")
    rate = {k: n / float(np.median(v)) for k, v in times.items()}
    for name, v in times.items():
        lo, hi = n / max(v), n / min(v)
        print(f"  {name:30s} {rate[name]:12,.0f} samples/s ({lo:,.0f}-{hi:,.0f})")
    print(f"naive levels agree with the reference on {agree:.1%}")
    naive_rate = rate[names[4]]
    print(
        f"ratios to naive: reference one/arrays {rate[names[0]] / naive_rate:.1f}x / "
        f"{rate[names[1]] / naive_rate:.0f}x; streaming one/arrays "
        f"{rate[names[2]] / naive_rate:.1f}x / {rate[names[3]] / naive_rate:.0f}x"
    )
    print(
        f"streaming / reference (today's checker): one at a time "
        f"{rate[names[2]] / rate[names[0]]:.2f}x, arrays {rate[names[3]] / rate[names[1]]:.2f}x"
    )
    print(
        f"pump per mode / reference (today's checker): one at a time "
        f"{rate[names[5]] / rate[names[0]]:.2f}x, arrays {rate[names[6]] / rate[names[1]]:.2f}x"
    )


if __name__ == "__main__":
    main()
