"""Compile the fingerprint kernels into numba's cache ahead of use: ``python -m opslens.features.warm``.

numba compiles a kernel the first time it is called with a type signature and keeps
the machine code in its cache (next to the module, or under ``NUMBA_CACHE_DIR``).
Without this, a user's first fleet run pays the compilation (about 20 s of CPU on
two cores) and every fresh container pays it again. ``make`` runs this after it
installs opslens, and the Docker image runs it at build time, so the first run
costs what the second does. It computes fingerprints of a small generated fleet
through the public functions, on both the serial and the parallel path, so every
kernel is compiled with the signatures a real run uses; then the segments recipe's
nearest-reference-point kernel (:mod:`opslens.cluster.nearest`), which its single-row
path (the service) runs, and the tree walks of the propensity and segments recipes'
single-row paths (:mod:`opslens.models.trees`).

Example:
    >>> import opslens.features.warm as warm
    >>> callable(warm.main)
    True
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from opslens.cluster import nearest
from opslens.features.fingerprints import (
    _PARALLEL_ROWS,
    RollingFingerprints,
    device_fingerprint,
    fleet_fingerprints,
)
from opslens.models import trees

__all__ = ["main", "warm"]

METRICS = ["temperature", "vibration", "current"]


def _readings(n_devices: int, n_points: int = 48) -> pl.DataFrame:
    """Hourly readings of ``n_devices`` devices, three metrics, a few missing values."""
    rng = np.random.default_rng(0)
    n = n_devices * n_points
    values = rng.normal(size=(n, 3)).cumsum(axis=0)
    values[rng.random((n, 3)) < 0.02] = np.nan
    start = datetime(2025, 1, 1)
    return pl.DataFrame(
        {
            "device_id": np.repeat([f"d{i:05d}" for i in range(n_devices)], n_points),
            "timestamp": [start + timedelta(hours=h) for h in range(n_points)] * n_devices,
            **{m: values[:, j] for j, m in enumerate(METRICS)},
        }
    )


def warm() -> float:
    """Run every fingerprint kernel once on small inputs; the seconds it took."""
    start = time.perf_counter()
    for n_devices in (8, _PARALLEL_ROWS + 8):  # the serial and the parallel spectral kernel
        readings = _readings(n_devices)
        fleet_fingerprints(readings, entity="device_id", time="timestamp", metrics=METRICS)
    one = readings.filter(pl.col("device_id") == "d00000")
    device_fingerprint(one, metrics=METRICS)
    rolling = RollingFingerprints(
        one, entity="device_id", time="timestamp", metrics=METRICS, window=timedelta(hours=12)
    )
    rolling.at(one["timestamp"][-1])
    nearest.warm()  # the segments recipe's nearest reference point (its single-row path)
    trees.warm()  # XGBoost's and LightGBM's single-row walks (propensity's, segments')
    return time.perf_counter() - start


def main() -> None:
    """Warm the cache and say how long it took."""
    seconds = warm()
    sys.stdout.write(
        "opslens: fingerprint kernels compiled into numba's cache, with the nearest-point "
        f"and tree-walk kernels, in {seconds:.1f} s\n"
    )


if __name__ == "__main__":
    main()
