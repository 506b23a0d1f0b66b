"""The distribution recipe against its baselines (each combination's own histogram, the global one).

Planted: three distribution shapes over many combinations. With few rows per combination
the own histogram is noise and the pattern-shrunk prediction must beat it by a clear
margin; with thousands of rows per combination the own histogram is as good as it gets
and the run must not claim a win it does not have. The bundled demo data states both
comparisons with intervals on every held-out row; an analysis without ``columns.time``
(issue 28) runs, holds out a seeded random share and says so.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

import opslens
from opslens.api import load_project
from opslens.recipes.distribution import RECIPE
from opslens.recipes.distribution.facts import DistributionFacts
from opslens.runner import run_analysis
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import open_run
from opslens.tracking.tracker import MemoryTracker

pytestmark = pytest.mark.slow

DEMO = Path(opslens.__file__).parent / "recipes" / "distribution" / "demo" / "project.yaml"


def planted(
    n_a: int, n_b: int, rows_per: int, *, seed: int, jitter: float = 0.0, time: bool = True
) -> pl.DataFrame:
    """``n_a × n_b`` combinations of ``rows_per`` rows, each one of three shapes of ``y``.

    Shapes: tight normal around 20, right-skewed (8 + lognormal), bimodal (12 and 35);
    ``jitter`` shifts each combination by its own normal offset (information the pattern lacks).
    """
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(n_a), n_b)
    b = np.tile(np.arange(n_b), n_a)
    shape = np.repeat(rng.integers(0, 3, a.size), rows_per)
    shift = np.repeat(rng.normal(0.0, jitter, a.size), rows_per)
    n = shape.size
    y = np.where(
        shape == 0,
        rng.normal(20, 2, n),
        np.where(
            shape == 1,
            8 + rng.lognormal(2.0, 0.6, n),
            np.where(rng.random(n) < 0.5, rng.normal(12, 1.5, n), rng.normal(35, 2.5, n)),
        ),
    )
    frame = pl.DataFrame(
        {
            "a": [f"a{i}" for i in np.repeat(a, rows_per)],
            "b": [f"b{i}" for i in np.repeat(b, rows_per)],
            "y": y + shift,
        }
    )
    if not time:
        return frame
    start = dt.datetime(2026, 1, 1)
    seconds = rng.uniform(0, 60 * 86400, n)
    return frame.with_columns(
        pl.Series("t", [start + dt.timedelta(seconds=float(s)) for s in seconds])
    )


def _run(tmp_path: Path, frame: pl.DataFrame, *, time: bool, **params: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {"target": "y", "categorical": ["a", "b"]}
    if time:
        columns["time"] = "t"
    result = opslens.run(
        frame, runs_dir=tmp_path, recipe="distribution", columns=columns, params=params
    )
    facts: dict[str, Any] = result.facts
    return facts


def _score(facts: DistributionFacts, baseline: str, metric: str) -> Any:
    assert facts.baselines is not None
    [score] = [s for s in facts.baselines.for_baseline(baseline) if s.metric == metric]
    return score


def test_the_demo_states_both_baselines_on_every_held_out_row(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text(
        DEMO.read_text().replace(
            'tracking: {uri: "sqlite:///mlflow.db"}', "tracking: {enabled: false}"
        )
    )
    run_analysis(load_project(tmp_path / "project.yaml"), "trip-eta", tracker=MemoryTracker())
    run = open_run(tmp_path / "runs", "trip-eta")
    raw = run.facts
    facts = RECIPE.read_facts(raw)
    assert isinstance(facts, DistributionFacts)
    # issue 21: the three planted shapes, not location splits of them (K=5 before)
    data = make_trips(n_rows=60_000, seed=0)
    cats = ["route", "hour_band", "vehicle_type"]
    truth = data.truth.with_columns(
        pl.concat_str([pl.format(f"{c}={{}}", c) for c in cats], separator="|").alias("comb")
    )
    joined = run.table("clusters").join(truth.select("comb", "shape"), on="comb")
    assert joined.height == run.table("clusters").height
    assert adjusted_rand_score(joined["shape"], joined["cluster"]) >= 0.99
    assert facts.choose_k is not None and facts.choose_k.k == 3
    assert facts.classify is not None and facts.prepare is not None
    ev = facts.classify.holdout_scores
    held_out = facts.prepare.holdout_rows
    assert ev.test_rows == held_out == ev.test_rows_scored > 10_000
    assert ev.strength_chosen_on == "the last 25% of the training period (started_at)"
    assert ev.blended is not None and ev.own_histogram is not None
    assert ev.global_histogram is not None
    for name, figures in (("own", ev.own_histogram), ("global", ev.global_histogram)):
        log, crps = _score(facts, name, "log_score"), _score(facts, name, "crps")
        assert log.n == crps.n == held_out
        assert log.gate and log.higher_is_better and not crps.gate and not crps.higher_is_better
        assert log.model == pytest.approx(ev.blended.log_score)
        assert log.value == pytest.approx(figures.log_score)
        assert crps.value == pytest.approx(figures.crps)
        for s in (log, crps):
            assert s.interval is not None and all(math.isfinite(x) for x in s.interval)
            assert s.interval[0] < s.interval[1]
    # the planted shapes make the global histogram far worse; the own histogram is close
    assert _score(facts, "global", "log_score").interval[0] > 0.4
    own = _score(facts, "own", "log_score")
    assert abs(own.model - own.value) < 0.05
    assert own.model >= own.value  # never worse than the own histogram (issue 21)
    assert facts.baselines is not None
    assert raw["baselines"]["verdict"] == facts.baselines.verdict


def test_shrinkage_beats_the_own_histogram_of_small_combinations(tmp_path: Path) -> None:
    """300 combinations of 40 rows (30 to train on): own histograms over 20 bins are noise."""
    raw = _run(tmp_path, planted(20, 15, 40, seed=1), time=True, min_combination_size=10)
    facts = RECIPE.read_facts(raw)
    assert isinstance(facts, DistributionFacts) and facts.choose_k is not None
    assert facts.choose_k.k == 3
    own = _score(facts, "own", "log_score")
    assert own.n == 3000
    assert own.model - own.value > 0.4  # nats per held-out row
    assert own.interval is not None and own.interval[0] > 0.3
    assert own.p_value is not None and own.p_value < 0.01
    glob = _score(facts, "global", "log_score")
    assert glob.model - glob.value > 0.3 and glob.interval is not None and glob.interval[0] > 0.2
    assert facts.baselines is not None and facts.baselines.model_wins


def test_no_win_is_claimed_where_every_combination_has_thousands_of_rows(tmp_path: Path) -> None:
    """6 combinations of 3,000 rows, each shifted: the own histogram is all there is to know."""
    raw = _run(tmp_path, planted(3, 2, 3000, seed=2, jitter=1.0), time=True)
    facts = RECIPE.read_facts(raw)
    own = _score(facts, "own", "log_score")
    assert own.n == 4500
    assert abs(own.model - own.value) < 0.005
    assert own.model >= own.value and own.model >= _score(facts, "global", "log_score").value
    assert own.interval is not None and own.interval[0] < 0.005  # no clear gain claimed
    assert abs(own.interval[1] - own.interval[0]) < 0.02
    crps = _score(facts, "own", "crps")
    assert abs(crps.model - crps.value) < 0.01 * crps.value


def test_an_analysis_without_a_time_column_runs_on_a_random_holdout(tmp_path: Path) -> None:
    """Issue 28: 4,000 rows, no columns.time; the pattern alone wins (strength infinite)."""
    raw = _run(
        tmp_path, planted(10, 10, 40, seed=3, time=False), time=False, min_combination_size=10
    )
    facts = RECIPE.read_facts(raw)
    assert isinstance(facts, DistributionFacts)
    assert facts.prepare is not None and facts.classify is not None
    assert facts.prepare.holdout == "a seeded random 25% of the rows (no columns.time)"
    assert facts.prepare.holdout_from is None
    ev = facts.classify.holdout_scores
    assert ev.strength is None  # infinite: only the pattern (what issue 28 failed to write)
    assert ev.strength_chosen_on == "a seeded random 25% of the training rows (no columns.time)"
    assert abs(ev.test_rows - 1000) < 100 and ev.test_rows == facts.prepare.holdout_rows
    own = _score(facts, "own", "log_score")
    assert own.n == ev.test_rows and own.model - own.value > 0.4
    # the same seed, the same split and scores
    again = _run(
        tmp_path / "again",
        planted(10, 10, 40, seed=3, time=False),
        time=False,
        min_combination_size=10,
    )
    assert again["classify"]["holdout_scores"] == raw["classify"]["holdout_scores"]
