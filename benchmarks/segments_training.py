"""HDBSCAN training at 50,000 rows × 10 features: the hdbscan package (what the segments recipe
uses, with prediction data) against scikit-learn's ``HDBSCAN`` and, if installed, fast_hdbscan.

Same data, same min_cluster_size / min_samples; prints seconds, segments found, noise share
and the ARI between the labelings.

    python benchmarks/segments_training.py [--rows 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from segments_assign import data
from sklearn.metrics import adjusted_rand_score


def timed(fit: Callable[[], Any]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    labels = np.asarray(fit())
    return time.perf_counter() - t0, labels


def main() -> None:
    import hdbscan
    from sklearn.cluster import HDBSCAN

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    args = ap.parse_args()
    X = data(args.rows, 1)
    kw = {"min_cluster_size": 100, "min_samples": 10}
    runs = {
        "hdbscan (prediction_data=True)": lambda: (
            hdbscan.HDBSCAN(**kw, prediction_data=True).fit(X).labels_
        ),
        "sklearn.cluster.HDBSCAN": lambda: HDBSCAN(**kw, copy=True).fit(X).labels_,
    }
    try:
        import fast_hdbscan

        fast_hdbscan.HDBSCAN(**kw).fit(X[:2_000])  # compile its numba kernels before timing
        runs["fast_hdbscan (compiled)"] = lambda: fast_hdbscan.HDBSCAN(**kw).fit(X).labels_
    except ImportError:
        print("fast_hdbscan is not installed: skipped")
    results = {name: timed(fit) for name, fit in runs.items()}
    ref_name = next(iter(results))
    ref_s, ref = results[ref_name]
    for name, (s, labels) in results.items():
        print(
            f"{name:32s} {s:7.1f} s  segments {labels.max() + 1:2d}  noise "
            f"{(labels < 0).mean():.3f}  ARI vs hdbscan {adjusted_rand_score(ref, labels):.3f}  "
            f"time / hdbscan {s / ref_s:.2f}"
        )


if __name__ == "__main__":
    main()
