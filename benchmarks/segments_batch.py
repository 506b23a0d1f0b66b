"""process_batch throughput (validation + assignment + both targets' predictions + metrics) at
10k, 100k and 1M rows, against a naive loop that scores one row at a time (predict_one).

The model is trained once on 20,000 synthetic patient-days (default params). The naive loop
is timed on 2,000 rows and its rows/s compared with ours at each size (ours: best of 3 runs
up to 100k rows, one run at 1M).

    python benchmarks/segments_batch.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import time

from opslens.recipes.segments import SegmentPipeline, SegmentPredictor, SegmentsParams
from opslens.synthetic.patients import FEATURES, make_patient_batches, make_patients


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    args = ap.parse_args()
    params = SegmentsParams.model_validate(
        {"model_features": ["score_lag1", "score_lag2"], "monitor": {"noise_threshold": 1.0}}
    )
    train = make_patients(20_000, seed=0).frame
    pipe = SegmentPipeline(
        params, features=list(FEATURES), categorical=["ward"], series_target="next_score"
    ).fit(train, train["next_score"], train["resource_hours"])
    predictor = SegmentPredictor(pipe.model_)
    rows = make_patient_batches(1, 2_000, seed=5)[0].frame.to_dicts()
    t0 = time.perf_counter()
    for row in rows:
        predictor.predict_one(row)
    naive = len(rows) / (time.perf_counter() - t0)
    print(f"naive per-row loop (predict_one): {naive:,.0f} rows/s")
    for n in (int(s) for s in args.sizes.split(",")):
        batch = make_patient_batches(1, n, seed=6)[0].frame.drop("next_score", "resource_hours")
        s = float("inf")
        for _ in range(3 if n <= 100_000 else 1):  # best of 3: the machine is shared
            t0 = time.perf_counter()
            result = pipe.process_batch(batch, auto_retrain=False)
            s = min(s, time.perf_counter() - t0)
        r = result.record
        print(
            f"process_batch {n:>9,} rows: {s:6.2f} s, {n / s:>10,.0f} rows/s "
            f"({n / s / naive:,.0f}x naive), process peak RSS {r['peak_memory_mb']:.0f} MB, "
            f"noise ratio {r['noise_ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
