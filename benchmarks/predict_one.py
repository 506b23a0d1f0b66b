"""One prediction in process: each recipe's single-row fast path against the raw model call
it wraps, and against the batch path a single row took before.

Each recipe is timed in 3 interleaved rounds (ours, before, raw in turn, each a loop of
``--calls`` calls over different rows; segments' batch path a quarter of them); the figures
are the medians of the three rounds' per-call means, with min-max, in CPU time of the process
(``time.process_time``: threads included) and in wall time. The machine these figures come
from is shared by several jobs, so a short call's wall time is mostly waiting for a core; CPU
time is what a call costs. The table at the end gives all five and ours/raw (target <= 3x) and
before/ours (segments: target >= 50x).

* Segments (patients, 5,000 training rows): ours is ``SegmentPredictor.predict_one``
  (scaled vector -> nearest reference point -> the segment's boosters through LightGBM's
  single-row fast path); before is the one-row polars frame through the batch path
  (``SegmentModel.score``), timed in the same run; raw is LightGBM's ``Booster.predict`` on a
  one-row numpy array with one thread (the cheapest form of that call; the series target's
  global model), and for reference ``LGBMRegressor.predict`` on the same row.
* Residual (machine axes, 3 axes, trained by the recipe on 3,000 samples): ours is
  ``ResidualPredictor.predict_one`` on Python floats; before is the one-row frame through
  ``predict_frame``; raw is each axis's ``AxisTrend.predict`` on a one-element array.
* Distribution (60,000 synthetic trips): ours is ``PatternPredictor.predict_one`` (answers
  kept per combination); before is the same with the kept answers cleared before each call;
  raw is ``xgboost.Booster.inplace_predict`` on a one-row float32 array.
* Fleet (fingerprints of 300 synthetic devices, all four rare-device methods): ours is
  ``RareDeviceScorer.score_one`` on one device's fingerprint (a dict of features); before is
  the one-row frame through ``RareDeviceScorer.predict_frame``; raw is the detector's models'
  ``score_samples`` on the one scaled row (the model calls the score wraps).
* Fleet device (a fleet model trained by the recipe on 100 synthetic devices of 240 hourly
  readings; 20 held-out devices): ours is ``FleetPredictor.predict_one`` on one device's
  readings as JSON sends them (fingerprint, rare score and group on numpy); before is the
  one-device table through ``predict_frame`` (``_predict_via_table``), a twentieth of the
  calls; raw is the detector's models' ``score_samples`` on the device's scaled fingerprint.
  The answers are checked equal first.
* Propensity (XGBoost with the recipe's defaults on 20,000 synthetic feature rows, 16 features
  and 6 categories): ours is ``PropensityPredictor.predict_one`` on a feature row (a dict);
  before is the one-row frame through ``predict_frame``; raw is ``Booster.inplace_predict`` on
  a one-row numpy array.

Run: ``.venv/bin/python benchmarks/predict_one.py [--calls 2000] [--recipes segments,fleet]``
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


def _per_call(fn: Callable[[int], object], calls: int) -> tuple[float, float]:
    """Wall and CPU seconds (the process's: threads included) per call, over ``calls`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


RESULTS: dict[str, dict[str, dict[str, list[float]]]] = {}


def _report(title: str, times: dict[str, dict[str, list[float]]]) -> None:
    RESULTS[title] = times
    print(title, flush=True)
    for clock in ("cpu", "wall"):
        t = times[clock]
        med = {k: statistics.median(v) for k, v in t.items()}
        for name, values in t.items():
            print(
                f"{clock:>4} {name:>7}: {med[name] * 1e6:9.1f} µs per call "
                f"(min {min(values) * 1e6:.1f}, max {max(values) * 1e6:.1f})"
            )
        print(
            f"{clock:>4} ours / raw model call: {med['ours'] / med['raw']:.2f}x (target <= 3x); "
            f"before / ours: {med['before'] / med['ours']:.1f}x",
            flush=True,
        )


def _cell(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1e6:,.1f} "
        f"({min(values) * 1e6:,.1f}–{max(values) * 1e6:,.1f})"
    )


def _table() -> None:
    print(
        "\nCPU time per call (the machine is shared: wall time includes waiting for a core), "
        "medians of 3 rounds (min–max); the wall-clock ratios alongside"
    )
    print(
        "| recipe | ours µs | raw model call µs | ours/raw | before µs | before/ours "
        "| wall ours/raw | wall before/ours |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, times in RESULTS.items():
        t, w = times["cpu"], times["wall"]
        med = {k: statistics.median(v) for k, v in t.items()}
        wmed = {k: statistics.median(v) for k, v in w.items()}
        print(
            f"| {name} | {_cell(t['ours'])} | {_cell(t['raw'])} | "
            f"{med['ours'] / med['raw']:.2f}x | {_cell(t['before'])} | "
            f"{med['before'] / med['ours']:.1f}x | {wmed['ours'] / wmed['raw']:.2f}x | "
            f"{wmed['before'] / wmed['ours']:.1f}x |"
        )
    seg = RESULTS.get("segments")
    if seg:
        for clock in ("cpu", "wall"):
            t = seg[clock]
            ratios = sorted(b / o for b, o in zip(t["before"], t["ours"], strict=True))
            print(
                f"segments ({clock}): predict_one "
                f"{statistics.median(t['before']) / statistics.median(t['ours']):.1f}x faster "
                f"than the batch path on a one-row frame (per round {ratios[0]:.1f}–"
                f"{ratios[-1]:.1f}x; target >= 50x)"
            )


def _rounds(
    fns: dict[str, Callable[[int], object]], calls: int, slow: int | None = None
) -> dict[str, dict[str, list[float]]]:
    """3 interleaved rounds; ``slow``: fewer calls for ``before`` (a batch path per row)."""
    for fn in fns.values():  # warm up
        _per_call(fn, min(200, calls))
    times: dict[str, dict[str, list[float]]] = {
        "wall": {name: [] for name in fns},
        "cpu": {name: [] for name in fns},
    }
    for _ in range(3):
        for name, fn in fns.items():
            n = slow if slow is not None and name == "before" else calls
            wall, cpu = _per_call(fn, n)
            times["wall"][name].append(wall)
            times["cpu"][name].append(cpu)
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
    regressor = model.series.global_
    booster = regressor.booster_

    def ours(i: int) -> object:
        return predictor.predict_one(rows[i % 1000])

    def before(i: int) -> object:
        row = rows[i % 1000]
        frame = pl.DataFrame({c: [row[c]] for c in schema}, schema=schema)
        return model.score(frame).row(0, named=True)

    def raw(i: int) -> object:
        return booster.predict(matrix[i % 1000 : i % 1000 + 1], num_threads=1)

    def sklearn(i: int) -> object:
        return regressor.predict(matrix[i % 1000 : i % 1000 + 1])

    fns = {"ours": ours, "before": before, "raw": raw, "sklearn": sklearn}
    _report("segments", _rounds(fns, calls, slow=max(calls // 4, 1)))


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


def fleet(calls: int) -> None:
    import polars as pl

    from opslens.detect.population import rank_rare_devices
    from opslens.features.fingerprints import fleet_fingerprints
    from opslens.recipes.fleet.predictor import RareDeviceScorer
    from opslens.synthetic.fleet import make_fleet

    metrics = ["temperature", "vibration", "current"]
    data = make_fleet(seed=0, n_devices=400, n_points=400)
    fp = fleet_fingerprints(data.readings, entity="device_id", time="timestamp", metrics=metrics)
    train, new = fp.head(300), fp.tail(100)
    scorer = RareDeviceScorer.from_ranking(
        rank_rare_devices(train, entity="device_id"), train, entity="device_id"
    )
    det = scorer.detector
    rows = new.to_dicts()
    frames = [pl.DataFrame([r], schema=new.schema) for r in rows]
    X = new.select(scorer.features).to_numpy()
    X = np.where(np.isfinite(X), X, scorer.medians)
    Z = (X - det.center_) / det.scale_

    def ours(i: int) -> object:
        return scorer.score_one(rows[i % 100])

    def before(i: int) -> object:
        return scorer.predict_frame(frames[i % 100]).row(0, named=True)

    def raw(i: int) -> object:
        z = Z[i % 100 : i % 100 + 1]
        return [det.models_[m].score_samples(z) for m in det.methods]

    _report("fleet", _rounds({"ours": ours, "before": before, "raw": raw}, calls))


def fleet_device(calls: int) -> None:
    import json

    import polars as pl

    from opslens.synthetic.fleet import make_fleet

    metrics = ["temperature", "vibration", "current"]
    data = make_fleet(seed=0, n_devices=120, n_points=240, n_failing=6)
    ids = data.readings["device_id"].unique(maintain_order=True).to_list()
    train = data.readings.filter(pl.col("device_id").is_in(ids[:100]))
    runs = tempfile.mkdtemp(prefix="opslens-bench-")
    result = opslens.run(
        train,
        recipe="fleet",
        name="fleet-device",
        runs_dir=runs,
        columns={"entity": "device_id", "time": "timestamp", "metrics": metrics},
        params={"inspect_top": 0},
    )
    predictor: Any = result.predictor()
    instances = []
    for device in ids[100:]:
        rows = data.readings.filter(pl.col("device_id") == device).select("timestamp", *metrics)
        rows = rows.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
        instances.append(json.loads(json.dumps({"device_id": device, "readings": rows.to_dicts()})))
    for instance in instances:  # the same answers, or the figures mean nothing
        assert predictor.predict_one(instance) == predictor._predict_via_table(instance)
    scorer = predictor.scorer
    det = scorer.detector
    fp = predictor.fingerprints(data.readings.filter(pl.col("device_id").is_in(ids[100:]))).select(
        scorer.features
    )
    X = fp.to_numpy()
    Z = (np.where(np.isfinite(X), X, scorer.medians) - det.center_) / det.scale_
    n = len(instances)

    def ours(i: int) -> object:
        return predictor.predict_one(instances[i % n])

    def before(i: int) -> object:
        return predictor._predict_via_table(instances[i % n])

    def raw(i: int) -> object:
        z = Z[i % n : i % n + 1]
        return [det.models_[m].score_samples(z) for m in det.methods]

    fns = {"ours": ours, "before": before, "raw": raw}
    _report("fleet device", _rounds(fns, calls, slow=max(calls // 20, 1)))


def propensity(calls: int) -> None:
    import polars as pl

    from opslens.recipes.propensity.modelling import design_matrix, fit_xgboost
    from opslens.recipes.propensity.params import ModelParams
    from opslens.recipes.propensity.predictor import PropensityPredictor

    rng = np.random.default_rng(0)
    features = [f"f{j}" for j in range(16)]
    categories = [f"c{j}" for j in range(6)]
    n = 21_000
    X = rng.poisson(3.0, size=(n, len(features))).astype(float)
    category = rng.choice(categories, size=n)
    z = 0.5 * X[:, 0] - 0.3 * X[:, 1] + 0.2 * X[:, 2] * (category == "c1") - 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    frame = pl.DataFrame({f: X[:, j] for j, f in enumerate(features)}).with_columns(
        category=pl.Series(category)
    )
    design = design_matrix(frame, features, categories)
    model = fit_xgboost(design[:20_000], y[:20_000], ModelParams(), 0)
    predictor = PropensityPredictor(model, "xgboost", features, categories, horizon_hours=168.0)
    rows = frame.tail(1000).to_dicts()
    held = design[20_000:]
    booster = model.get_booster()

    def ours(i: int) -> object:
        return predictor.predict_one(rows[i % 1000])

    def before(i: int) -> object:
        row = rows[i % 1000]
        return predictor.predict_frame(pl.DataFrame([row], schema=frame.schema))["probability"][0]

    def raw(i: int) -> object:
        return booster.inplace_predict(held[i % 1000 : i % 1000 + 1])

    _report("propensity", _rounds({"ours": ours, "before": before, "raw": raw}, calls))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--recipes",
        default="segments,residual,fleet,propensity,distribution",
        help="comma-separated recipes to time (default: all five; fleet: its fingerprint "
        "scored, then one device's readings answered)",
    )
    args = parser.parse_args()
    chosen = set(args.recipes.split(","))
    unknown = chosen - {"segments", "residual", "fleet", "propensity", "distribution"}
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(sorted(unknown))}")
    if "segments" in chosen:
        segments(min(args.calls, 2000))
    if "residual" in chosen:
        residual(min(args.calls, 2000))
    if "fleet" in chosen:
        fleet(min(args.calls, 30))
        fleet_device(min(args.calls, 2000))
    if "propensity" in chosen:
        propensity(args.calls)
    if "distribution" in chosen:
        distribution(args.calls)
    _table()


def distribution(calls: int) -> None:
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
    instances = trips.select([*CATEGORICAL, "duration_min"]).head(calls).to_dicts()
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

    _report("distribution", _rounds({"ours": ours, "before": before, "raw": raw}, calls))


if __name__ == "__main__":
    main()
