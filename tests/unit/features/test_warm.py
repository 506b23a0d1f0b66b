"""`python -m opslens.features.warm` compiles every fingerprint kernel into numba's cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from opslens.features import _kernels

pytestmark = pytest.mark.slow


def test_warm_compiles_every_kernel_into_the_cache(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "opslens.features.warm"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert "fingerprint kernels compiled into numba's cache" in out.stdout
    kernels = {
        name
        for name, value in vars(_kernels).items()
        if isinstance(value, numba.core.registry.CPUDispatcher)
    }
    cached = {p.name.split(".")[1].rsplit("-", 1)[0] for p in tmp_path.rglob("_kernels.*.nbi")}
    # spectral_kernel_serial is numba's compile of spectral_kernel's own function
    assert kernels - {"spectral_kernel_serial"} <= cached, kernels - cached
    # and each cache entry holds machine code, not only an index
    assert all(any(tmp_path.rglob(f"_kernels.{k}-*.nbc")) for k in cached)
    # the tree walk of propensity's single-row path too
    walked = {p.name.split(".")[1].rsplit("-", 1)[0] for p in tmp_path.rglob("trees.*.nbc")}
    assert walked == {"_walk_xgboost", "_walk_lightgbm", "_logit"}, walked
