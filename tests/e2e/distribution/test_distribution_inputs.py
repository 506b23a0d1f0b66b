"""Meaningless input is refused when the run starts (one line, exit 2, nothing written); memory is bounded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.fakes.cli import run_cli

PROJECT = """
tracking: {{enabled: false}}
analyses:
  - name: eta
    recipe: distribution
    source: {{kind: file, path: trips.csv}}
    columns: {{time: started_at, target: minutes, categorical: [{categorical}]}}
    params: {{min_combination_size: 5{params}}}
"""


def _project(
    tmp_path: Path, minutes: list[float], categorical: str = "route", params: str = ""
) -> Path:
    n = len(minutes)
    pl.DataFrame(
        {
            "started_at": [f"2024-01-{1 + i % 28:02d}T00:00:00" for i in range(n)],
            "route": [f"R{i % 3}" for i in range(n)],
            "minutes": minutes,
        }
    ).with_columns(pl.col("started_at").str.to_datetime()).write_csv(tmp_path / "trips.csv")
    (tmp_path / "project.yaml").write_text(PROJECT.format(categorical=categorical, params=params))
    return tmp_path


def _fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *needles: str) -> None:
    result = run_cli(["run"], tmp_path, monkeypatch)
    assert result.code == 2, (result.out, result.err)
    lines = [line for line in result.err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "runs" / "eta" / "latest").exists()


GOOD = [float(x) for x in np.random.default_rng(0).gamma(2.0, 5.0, 120)]


def test_hdr_coverage_outside_zero_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, GOOD, params=", hdr_coverages: [1.5, 0.9]")
    _fails(tmp_path, monkeypatch, "params.hdr_coverages", "1.5")


def test_target_near_the_float_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, [*GOOD[:-1], 1e301])
    _fails(tmp_path, monkeypatch, "'minutes'", "1e+301", "rescale")


def test_infinite_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, [*GOOD[:-1], float("inf")])
    _fails(tmp_path, monkeypatch, "'minutes'", "infinite")


def test_target_listed_as_a_categorical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, GOOD, categorical="route, minutes")
    _fails(tmp_path, monkeypatch, "columns.categorical", "'minutes'")


def test_values_outside_the_declared_support(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path, [*GOOD[:-1], -3.0], params=", support: [0, null]")
    _fails(tmp_path, monkeypatch, "params.support", "1 value")


def test_a_categorical_with_100000_levels_stays_within_2_gb() -> None:
    """The one-hot is sparse: 100,000 levels x 200,000 rows train and score in a bounded process."""
    code = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))  # 2 GB of address space
        import numpy as np, polars as pl
        from opslens.models.classifier import PatternClassifier
        rng = np.random.default_rng(0)
        levels = rng.integers(0, 100_000, 200_000)
        X = pl.DataFrame({"customer": [f"c{i}" for i in levels], "band": rng.integers(0, 3, 200_000)})
        y = (levels % 3 + X["band"].to_numpy()) % 3
        model = PatternClassifier(["customer", "band"], n_estimators=3).fit(X, y)
        assert len(model.levels_["customer"]) > 85_000
        p, unknown = model.predict_proba_one({"customer": "c5", "band": 1})
        batch = model.predict_proba(X.head(1000))
        # VmHWM: this program's own peak (ru_maxrss would keep the forking test worker's)
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(int(status.split()[0]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kb = int(done.stdout.split()[-1])
    assert peak_kb < 2 * 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


def test_a_target_with_text_that_is_no_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path, GOOD)
    text = (tmp_path / "trips.csv").read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",late"
    text[9] = text[9].rsplit(",", 1)[0] + ",late"
    (tmp_path / "trips.csv").write_text("\n".join(text) + "\n")
    _fails(tmp_path, monkeypatch, "column 'minutes'", "2 value(s) such as 'late'", "clean column")
