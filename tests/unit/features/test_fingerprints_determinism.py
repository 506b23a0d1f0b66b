"""Fingerprints are bit-identical whether numba compiled the kernels in this process or loaded
them from its cache (with ``reassoc`` fast-math they were not: 1e-16 apart, enough to reorder
the autoencoder's ranking between the first run after an install and every later one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CODE = """
import sys, numpy as np, polars as pl
from opslens.synthetic.fleet import make_fleet
from opslens.features.fingerprints import fleet_fingerprints
r = make_fleet(n_devices=60, n_points=400, seed=3, n_failing=2).readings
fleet_fingerprints(r, entity="device_id", time="timestamp",
                   metrics=["temperature", "vibration", "current"]).write_parquet(sys.argv[1])
"""


@pytest.mark.slow
def test_fresh_compile_equals_cached_kernels(tmp_path: Path) -> None:
    import polars as pl

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    for name in ("fresh", "cached"):  # the first compiles (and fills the cache), the second loads
        subprocess.run(
            [sys.executable, "-c", CODE, str(tmp_path / f"{name}.parquet")], env=env, check=True
        )
    assert any((tmp_path / "cache").rglob("*.nbi")), "the second process loaded from the cache"
    fresh, cached = (pl.read_parquet(tmp_path / f"{n}.parquet") for n in ("fresh", "cached"))
    assert fresh.equals(cached)
