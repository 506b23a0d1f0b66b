"""One prediction in process: the distribution predictor's ``predict_one`` against the raw
model call it wraps, and against itself without the answers kept per combination.

Trains the distribution recipe on 60,000 synthetic trips, then times, interleaved in
three rounds of 5,000 instances each (medians of the three rounds' per-call means,
with min-max):

* ours:    ``PatternPredictor.predict_one(instance)`` (answers kept per combination)
* before:  the same with the kept answers cleared before each call (today's path
           before this change: probabilities, blend, HDRs and summary every time)
* raw:     ``xgboost.Booster.inplace_predict`` on a one-row float32 array (the
           model call a user would make, without any answer around it)

Prints the per-call times and the ratios ours/raw and before/ours.

Run: ``.venv/bin/python benchmarks/predict_one.py [--calls 5000]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import opslens
from opslens.synthetic.trips import make_trips
from opslens.tracking.models import load_predictor

CATEGORICAL = ["route", "hour_band", "vehicle_type", "weekday"]


def _per_call(fn: Callable[[int], object], calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    trips = make_trips(n_rows=60_000, seed=0).trips
    runs = tempfile.mkdtemp(prefix="opslens-bench-")
    opslens.run(
        trips,
        recipe="distribution",
        name="eta",
        runs_dir=runs,
        columns={"target": "duration_min", "categorical": CATEGORICAL},
    )
    model: Any = load_predictor(Path(runs), "eta").predictor
    instances = trips.select([*CATEGORICAL, "duration_min"]).head(args.calls).to_dicts()
    booster = model.classifier.booster_
    rows = np.zeros((1, booster.num_features()), dtype=np.float32)
    rows[0, : len(CATEGORICAL)] = 1.0

    def ours(i: int) -> object:
        return model.predict_one(instances[i])

    def before(i: int) -> object:
        model.__dict__.pop("_answers", None)
        return model.predict_one(instances[i])

    def raw(i: int) -> object:
        return booster.inplace_predict(rows)

    for fn in (ours, before, raw):  # warm up
        _per_call(fn, 200)
    times: dict[str, list[float]] = {"ours": [], "before": [], "raw": []}
    for _ in range(3):
        for name, fn in (("ours", ours), ("before", before), ("raw", raw)):
            times[name].append(_per_call(fn, args.calls))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, values in times.items():
        print(
            f"{name:>7}: {med[name] * 1e6:8.1f} µs per call "
            f"(min {min(values) * 1e6:.1f}, max {max(values) * 1e6:.1f})"
        )
    print(f"ours / raw model call: {med['ours'] / med['raw']:.2f}x (target <= 3x)")
    print(f"before / ours: {med['before'] / med['ours']:.1f}x faster")


if __name__ == "__main__":
    main()
