"""Streaming latency per instance: PatternClassifier.predict_proba_one vs the naive path.

Trains a PatternClassifier (200 trees, depth 4, the recipe's defaults) on
synthetic trips (4 categoricals -> planted shape), then times 10,000 instances
one at a time, without plotting, through both paths in the same run:

* ours:  ``model.predict_proba_one(instance)``
* naive: a one-row pandas DataFrame -> ``pd.get_dummies`` -> reindex to the
  training columns -> ``XGBClassifier.predict_proba`` (what a user would write)

Prints p50/p99 of both and the ratio of p50s and of p99s; exits 1 if our p99
exceeds 1 ms or the p50 or p99 ratio is below 10 (and says which).

Run: ``.venv/bin/python benchmarks/stream_latency.py [--instances 10000] [--rows 60000]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse

from opslens.models.classifier import PatternClassifier
from opslens.synthetic.trips import make_trips

CATEGORICAL = ["route", "hour_band", "vehicle_type", "weekday"]


def naive_proba(model: PatternClassifier, instance: dict[str, object]) -> np.ndarray:
    """The path a user would write: one-row frame, get_dummies, reindex, predict_proba."""
    frame = pd.DataFrame([instance])[CATEGORICAL]
    dummies = pd.get_dummies(frame, prefix_sep="=").reindex(
        columns=model.feature_names_, fill_value=0
    )
    # the model is trained on a sparse one-hot, so the user's row goes in sparse too
    row = scipy.sparse.csr_matrix(dummies.to_numpy(dtype=np.float32))
    return np.asarray(model.model_.predict_proba(row)[0])


def timed(
    fn: Callable[[dict[str, object]], object], instances: list[dict[str, object]]
) -> np.ndarray:
    """Nanoseconds per call of ``fn(instance)``."""
    out = np.empty(len(instances), dtype=np.int64)
    for i, inst in enumerate(instances):
        t0 = time.perf_counter_ns()
        fn(inst)
        out[i] = time.perf_counter_ns() - t0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = make_trips(n_rows=args.rows, seed=args.seed)
    frame = data.trips.join(
        data.truth.select("route", "hour_band", "vehicle_type", "shape"),
        on=["route", "hour_band", "vehicle_type"],
    )
    t0 = time.perf_counter()
    model = PatternClassifier(CATEGORICAL).fit(frame, frame["shape"].to_numpy())
    fit_s = time.perf_counter() - t0

    stream = make_trips(n_rows=args.instances, seed=args.seed + 1).trips
    instances = stream.select(CATEGORICAL).to_dicts()
    # warm up both paths (imports, caches, JIT) and check they agree
    for inst in instances[:200]:
        ours, _ = model.predict_proba_one(inst)
        if not np.allclose(ours, naive_proba(model, inst), atol=1e-5):
            print(f"paths disagree on {inst}")
            return 1
    batch = model.predict_proba(stream[:1000])
    same = all(
        np.array_equal(model.predict_proba_one(inst)[0], batch[i])
        for i, inst in enumerate(instances[:1000])
    )

    ns_ours = timed(lambda inst: model.predict_proba_one(inst), instances)
    ns_naive = timed(lambda inst: naive_proba(model, inst), instances)
    p50_o, p99_o = np.percentile(ns_ours, [50, 99]) / 1e3
    p50_n, p99_n = np.percentile(ns_naive, [50, 99]) / 1e3
    print(
        f"trained on {frame.height:,} rows in {fit_s:.1f} s; {len(instances):,} instances each path"
    )
    print(f"streamed == batch probabilities (bitwise, 1000 rows): {same}")
    print(f"predict_proba_one : p50 {p50_o:8.1f} us   p99 {p99_o:8.1f} us")
    print(f"naive (pandas)    : p50 {p50_n:8.1f} us   p99 {p99_n:8.1f} us")
    print(f"speed-up          : p50 {p50_n / p50_o:6.1f}x       p99 {p99_n / p99_o:6.1f}x")
    failed = []
    if p99_o > 1000.0:
        failed.append(f"p99 {p99_o:.1f} us exceeds 1 ms")
    if p99_n / p99_o < 10.0:
        failed.append(f"p99 speed-up {p99_n / p99_o:.1f}x is below 10x")
    if p50_n / p50_o < 10.0:
        failed.append(f"p50 speed-up {p50_n / p50_o:.1f}x is below 10x")
    if not same:
        failed.append("streamed probabilities differ from batch")
    for reason in failed:
        print(f"FAIL: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
