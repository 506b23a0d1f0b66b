"""Issue 21: the default K keeps a small bimodal shape apart, and the model beats both baselines.

The ``city`` trips plant five shapes over a half year with calendar effects, missing
days, a sensor fault and outliers; the fifth shape (three ferry routes, 9 combinations,
~460 rows) is bimodal and small, so the one-SE rule alone merges it into a neighbour.
Defaults only (plus the unit and the support).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

import opslens
from opslens.recipes.distribution import RECIPE
from opslens.recipes.distribution.facts import DistributionFacts
from opslens.synthetic.trips import make_trips
from opslens.tracking.runs import open_run

pytestmark = pytest.mark.slow

CATS = ["route", "hour_band", "vehicle_type"]


@pytest.mark.parametrize("seed", [5, 6])
def test_five_shapes_with_a_small_bimodal_one_are_recovered(tmp_path: Path, seed: int) -> None:
    data = make_trips(n_rows=40_000, seed=seed, scenario="city", n_days=182, outlier_share=0.002)
    result = opslens.run(
        data.trips,
        runs_dir=tmp_path,
        name="city",
        recipe="distribution",
        columns={"time": "started_at", "target": "duration_min", "categorical": CATS},
        params={"unit": "min", "support": [0, None]},
    )
    facts = RECIPE.read_facts(result.facts)
    assert isinstance(facts, DistributionFacts)
    assert facts.choose_k is not None and facts.classify is not None
    truth = data.truth.with_columns(
        pl.concat_str([pl.format(f"{c}={{}}", c) for c in CATS], separator="|").alias("comb")
    )
    clusters = open_run(tmp_path, "city").table("clusters")
    joined = clusters.join(truth.select("comb", "shape"), on="comb", how="inner")
    assert joined.height == clusters.height == truth.height
    ari = adjusted_rand_score(joined["shape"].to_numpy(), joined["cluster"].to_numpy())
    assert ari >= 0.99, ari
    # the one-SE rule alone merged shapes; the shape check says which K and why
    kf = facts.choose_k
    assert kf.k == 5 and kf.k_one_se is not None and kf.k_one_se < 5
    assert "distinct in shape" in kf.reason and "so K=5 keeps them apart" in kf.reason
    rejected = [c for c in kf.shape_checks if c.k < 5]
    assert rejected and all(c.distinct >= 1 for c in rejected)
    assert all(t.p_value < 0.01 for c in rejected for t in c.tests if t.distinct)
    assert kf.shape_checks[-1].k == 5 and kf.shape_checks[-1].distinct == 0
    # the model is at least as good as both baselines in the same run
    ev = facts.classify.holdout_scores
    assert ev.blended is not None and ev.own_histogram is not None
    assert ev.global_histogram is not None
    assert ev.blended.log_score >= ev.own_histogram.log_score
    assert ev.blended.log_score >= ev.global_histogram.log_score
    assert facts.baselines is not None and facts.baselines.model_wins
