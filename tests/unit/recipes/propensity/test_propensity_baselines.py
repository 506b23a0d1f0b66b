"""The propensity model against its baselines: planted structure decides who wins, by how much.

An interaction of two features (purchase when both are low or both are high) is invisible to
any single feature: the model must beat the best single-feature rule by a wide AUROC margin.
A purchase that depends on one feature only is ranked as well by that feature as by any
model: the rule must come within a small margin of the model (the comparison is not rigged).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from opslens.config import AnalysisConfig
from opslens.core.baselines import BaselineScore, summarise
from opslens.core.recipe import StageContext
from opslens.recipes.propensity import RECIPE
from opslens.recipes.propensity.bootstrap import unit_bootstrap, weighted_metric
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import feature_columns
from opslens.recipes.propensity.training import train

PARAMS = {"models": {"n_estimators": 150, "max_depth": 3, "bootstrap": 300}}


def _ctx() -> StageContext:
    analysis = AnalysisConfig.model_validate(
        {"name": "p", "recipe": "propensity", "source": {"kind": "memory"}}
    )
    return StageContext(
        analysis=analysis, params=PropensityParams.model_validate(PARAMS), random_state=7
    )


def _split(
    rng: np.random.Generator, n: int, users: int, chance: object, shift: int
) -> pl.DataFrame:
    """``n`` rows of ``users`` users: every feature noise but ``user_events`` and ``pair_views``
    (uniform 0..100), a purchase with probability ``chance(a, b)``."""
    cols = feature_columns(PropensityParams().features.windows)
    frame = {c: rng.normal(size=n) for c in cols}
    a, b = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    frame["user_events"], frame["pair_views"] = a, b
    p = chance(a, b)  # type: ignore[operator]
    t0 = datetime(2024, 1, 1) + timedelta(days=shift)
    return pl.DataFrame(
        {
            "user_id": [f"u{k}" for k in rng.integers(0, users, n)],
            "item_id": [f"i{k}" for k in rng.integers(0, 50, n)],
            "prediction_time": [t0 + timedelta(days=int(k)) for k in rng.integers(0, 5, n)],
            "category": rng.choice(["c1", "c2"], n).tolist(),
            **frame,
            "label": (rng.random(n) < p).astype(np.int8),
        }
    )


def _run(chance: object, seed: int) -> tuple[dict[tuple[str, str], BaselineScore], dict]:
    rng = np.random.default_rng(seed)
    parts = {
        name: _split(rng, n, 600, chance, 10 * k)
        for k, (name, n) in enumerate((("train", 12000), ("val", 4000), ("test", 6000)))
    }
    out = train(
        _ctx(),
        train_features=parts["train"],
        val_features=parts["val"],
        test_features=parts["test"],
    )
    return {(s.baseline, s.metric): s for s in out.baselines}, out.facts


def _both(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Both low or both high: each feature alone is U-shaped, no direction of it ranks."""
    together = ((a < 30) & (b < 30)) | ((a > 70) & (b > 70))
    return np.where(together, 0.3, 0.003)


def _one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.002 + 0.3 * (1 - a / 100) ** 3  # fewer events, more likely: the rule runs low first


def test_an_interaction_of_two_features_beats_the_best_single_feature_rule() -> None:
    got, facts = _run(_both, 1)
    rule = got["best_rule", "auroc"]
    assert facts["chosen"] == "xgboost"
    assert rule.model > 0.8 and rule.value < 0.6, rule
    assert rule.model - rule.value > 0.25
    assert rule.interval is not None and rule.interval[0] > 0.15  # users resampled: still clear
    logistic = got["logistic", "auroc"]
    assert (
        logistic.model - logistic.value > 0.2 and logistic.gate
    )  # a linear model cannot see it either
    verdict = summarise(list(got.values()))
    assert verdict.model_wins and verdict.losses == []


def test_one_feature_alone_is_ranked_as_well_by_the_rule_as_by_the_model() -> None:
    got, facts = _run(_one, 2)
    best = facts["best_rule"]
    assert (best["feature"], best["direction"]) == ("user_events", "lower")  # chosen on train
    assert best["train_auroc"] > 0.75
    rule = got["best_rule", "auroc"]
    assert rule.value > 0.75 and abs(rule.model - rule.value) < 0.02, rule
    assert rule.interval is not None and rule.interval[0] < 0 < rule.interval[1]  # no real lead
    # the logistic regression fits this world as well: when it is the chosen model, comparing
    # it with itself decides nothing
    assert got["logistic", "auroc"].gate == (facts["chosen"] != "logistic")
    base = got["base_rate", "average_precision"]
    positives = facts["results"]["xgboost"]["test"]["positives"]
    assert base.value == pytest.approx(positives / 6000)  # a constant score: the prevalence
    assert base.gate and not got["base_rate", "log_loss"].gate
    assert {s.baseline for s in got.values()} == {b.name for b in RECIPE.baselines}


def test_the_bootstrap_equals_weighted_metrics_on_the_same_draws() -> None:
    rng = np.random.default_rng(5)
    n, n_units = 3000, 120
    units = rng.integers(0, n_units, n)
    y = (rng.random(n) < 0.05).astype(int)
    scores = {
        "a": np.round(rng.random(n) * 0.5 + 0.4 * y, 2),  # ties
        "flat": np.full(n, 0.05),
        # no ties: most tie groups hold a negative only (merged into runs between positives)
        "smooth": rng.random(n) * 0.5 + 0.3 * y,
    }
    metrics = ("auroc", "average_precision", "log_loss")
    boot = unit_bootstrap(y, scores, units, metrics=metrics, n_boot=6, random_state=9)
    draws = np.random.default_rng(9)
    for b in range(6):
        w = np.bincount(draws.integers(0, n_units, n_units), minlength=n_units)[units]
        for name, s in scores.items():
            for m in metrics:
                assert boot[name, m][b] == pytest.approx(weighted_metric(y, s, m, w)), (name, m)
    assert np.all(boot["flat", "auroc"] == 0.5)
    w = rng.integers(0, 4, n)
    for s in (scores["a"], scores["smooth"]):
        auroc = roc_auc_score(y, s, sample_weight=w)
        assert weighted_metric(y, s, "auroc", w) == pytest.approx(auroc, abs=1e-12)
        assert weighted_metric(y, s, "average_precision", w) == pytest.approx(
            average_precision_score(y, s, sample_weight=w), abs=1e-12
        )
        assert weighted_metric(y, s, "log_loss", w) == pytest.approx(
            log_loss(y, s, sample_weight=w)
        )
