"""One prediction in process: each predictor's ``predict_one`` against the raw model call
it wraps, and against the path it took before.

Segments (patients, 5,000 training rows): ours is ``SegmentPredictor.predict_one`` on numpy
arrays alone; before is the one-row polars frame through the batch path
(``SegmentModel.score``); raw is LightGBM's ``predict`` on a one-row array (the series
target's global model).

Residual (machine axes, 3 axes, trained by the recipe on 3,000 samples): ours is
``ResidualPredictor.predict_one`` (a sample answered as the first of a stream: residuals,
levels, the extrapolation guard) on Python floats; before is the one-row polars frame through
the batch path (``predict_frame``); raw is the model calls it wraps, each axis's
``AxisTrend.predict`` on a one-element array.

Distribution:

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


def _report(title: str, times: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    print(title)
    for name, values in times.items():
        print(
            f"{name:>7}: {med[name] * 1e6:8.1f} µs per call "
            f"(min {min(values) * 1e6:.1f}, max {max(values) * 1e6:.1f})"
        )
    print(f"ours / raw model call: {med['ours'] / med['raw']:.2f}x (target <= 3x)")
    print(f"before / ours: {med['before'] / med['ours']:.1f}x faster")


def _rounds(fns: dict[str, Callable[[int], object]], calls: int) -> dict[str, list[float]]:
    for fn in fns.values():  # warm up
        _per_call(fn, min(200, calls))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(3):
        for name, fn in fns.items():
            times[name].append(_per_call(fn, calls))
    return times


def segments(calls: int) -> None:
    import polars as pl

    from opslens.recipes.segments.model import fit_model
    from opslens.recipes.segments.params import SegmentsParams
    from opslens.recipes.segments.predictor import SegmentPredictor
    from opslens.synthetic.patients import FEATURES, make_patients

    data = make_patients(n_rows=6000, seed=0).frame
    model = fit_model(
        data.head(5000),
        SegmentsParams(),
        features=list(FEATURES),
        categorical=["ward"],
        series_target="next_score",
    )
    predictor = SegmentPredictor(model)
    rows = data.tail(1000).to_dicts()
    pre = model.preprocessor
    schema = {**{c: pl.Float64 for c in pre.numeric}, **{c: pl.String for c in pre.categorical}}
    matrix = pre.encode(data.tail(1000)).model
    booster = model.series.global_

    def ours(i: int) -> object:
        return predictor.predict_one(rows[i % 1000])

    def before(i: int) -> object:
        row = rows[i % 1000]
        frame = pl.DataFrame({c: [row[c]] for c in schema}, schema=schema)
        return model.score(frame).row(0, named=True)

    def raw(i: int) -> object:
        return booster.predict(matrix[i % 1000 : i % 1000 + 1])

    _report("segments", _rounds({"ours": ours, "before": before, "raw": raw}, calls))


def residual(calls: int) -> None:
    import polars as pl

    from opslens.synthetic.axes import make_axes

    frame = make_axes(seed=0).frame
    runs = tempfile.mkdtemp(prefix="opslens-bench-")
    opslens.run(
        frame,
        recipe="residual",
        name="axes",
        runs_dir=runs,
        columns={"time": "ts", "metrics": ["axis1", "axis2", "axis3"]},
        params={"registry": {"root_dir": str(Path(runs) / "registry")}},
    )
    predictor: Any = load_predictor(Path(runs), "axes").predictor
    rows = frame.tail(1000).to_dicts()
    times = np.asarray(predictor.arrays(frame.tail(1000))[0])
    models = [predictor.models[a] for a in predictor.axes]

    def ours(i: int) -> object:
        return predictor.predict_one(rows[i % 1000])

    def before(i: int) -> object:
        return predictor.predict_frame(pl.DataFrame([rows[i % 1000]])).row(0, named=True)

    def raw(i: int) -> object:
        t = times[i % 1000 : i % 1000 + 1]
        return [m.predict(t) for m in models]

    _report("residual", _rounds({"ours": ours, "before": before, "raw": raw}, calls))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    residual(min(args.calls, 2000))
    segments(min(args.calls, 2000))
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

    _report("distribution", _rounds({"ours": ours, "before": before, "raw": raw}, args.calls))


if __name__ == "__main__":
    main()
