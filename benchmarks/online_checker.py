"""Online checker throughput: samples per second per stream, one at a time and in arrays.

Trains the residual recipe on the bundled synthetic axes (3 axes, linear trends, a
planted fault), then replays all ``--samples`` samples as one stream through

* ours, one at a time: ``OnlineChecker.update(sample)`` (the JSON-ready state per stream);
* ours, in arrays: ``OnlineChecker.update_many(frame)`` in blocks of ``--block`` samples;
* the naive path a user would write, one at a time: scikit-learn ``LinearRegression.predict``
  on a one-row array per axis and a Python run-length counter per axis.

All three give the same levels (checked); prints samples/s and the ratios.

Run: ``.venv/bin/python benchmarks/online_checker.py [--samples 20000] [--block 1000]``
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from datetime import datetime

import numpy as np
import polars as pl
from sklearn.linear_model import LinearRegression

from opslens.recipes import project_from_mapping
from opslens.recipes.residual import OnlineChecker, ResidualPredictor
from opslens.runner import run_analysis
from opslens.synthetic.axes import make_axes


def train(folder: str, n: int) -> ResidualPredictor:
    project = project_from_mapping(
        {
            "tracking": {"enabled": False},
            "runs_dir": folder,
            "analyses": [
                {
                    "name": "axes",
                    "recipe": "residual",
                    "source": {
                        "kind": "synthetic",
                        "generator": "axes",
                        "options": {"n_samples": n},
                    },
                    "columns": {"time": "ts"},
                }
            ],
        }
    )
    predictor = run_analysis(project, "axes").predictor()
    assert isinstance(predictor, ResidualPredictor)
    return predictor


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--block", type=int, default=1_000)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        p = train(tmp, args.samples)
    frame = make_axes(seed=0, n_samples=args.samples).frame  # the whole series, replayed
    samples = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")).to_dicts()

    checker = OnlineChecker(p)
    t0 = time.perf_counter()
    one = [checker.update(s)["level"] for s in samples]
    t_one = time.perf_counter() - t0

    blocks = OnlineChecker(p)
    t0 = time.perf_counter()
    parts = [
        blocks.update_many(frame.slice(i, args.block)) for i in range(0, frame.height, args.block)
    ]
    t_arr = time.perf_counter() - t0
    arrays = pl.concat(parts)["level"].to_list()

    t0 = time.perf_counter()
    peer = naive(p, samples)
    t_naive = time.perf_counter() - t0
    assert one == arrays, "one at a time and arrays differ"
    agree = float(np.mean(np.array(one) == np.array(peer)))
    n = len(samples)
    print(f"{n} samples, 3 axes, one stream; levels: {dict(Counter(one))}")
    print(f"ours, one at a time:        {n / t_one:12,.0f} samples/s")
    print(f"ours, arrays of {args.block:5d}:      {n / t_arr:12,.0f} samples/s")
    print(
        f"naive (sklearn per sample): {n / t_naive:12,.0f} samples/s (levels agree on {agree:.1%})"
    )
    print(
        f"ratio one at a time / naive: {t_naive / t_one:.1f}x; arrays / naive: {t_naive / t_arr:.0f}x"
    )


if __name__ == "__main__":
    main()
