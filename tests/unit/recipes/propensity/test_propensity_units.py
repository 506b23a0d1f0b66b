"""The split's sizes and boundary rule, the generator's planted patterns, the metrics."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from opslens.config import AnalysisConfig
from opslens.core.recipe import StageContext
from opslens.errors import DataError
from opslens.features.events import sessionize
from opslens.recipes.propensity import modelling
from opslens.recipes.propensity.modelling import pos_weight, ranking_metrics, sample_negatives
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.stages import split, split_bounds
from opslens.synthetic.clickstream import make_clickstream


@pytest.mark.parametrize("days", [3, 7, 10, 30, 45, 61, 90, 365])
def test_split_sizes_are_70_15_15_by_date_within_one_day(days: int) -> None:
    first = datetime(2024, 8, 1, 7, 30)
    b = split_bounds(first, first + timedelta(days=days - 1, hours=3), (0.7, 0.15, 0.15))
    sizes = [(b[i + 1] - b[i]).days for i in range(3)]
    assert sum(sizes) == days and b[0] == datetime(2024, 8, 1)
    for size, share in zip(sizes, (0.7, 0.15, 0.15), strict=True):
        assert abs(size - share * days) <= 1


def _ctx() -> StageContext:
    analysis = AnalysisConfig.model_validate(
        {"name": "p", "recipe": "propensity", "source": {"kind": "memory"}}
    )
    return StageContext(analysis=analysis, params=PropensityParams(), random_state=0)


def test_a_session_crossing_a_boundary_is_cut_there() -> None:
    t0 = datetime(2024, 1, 1)
    # 20 days: train = 14 days, the boundary at 2024-01-15 00:00
    times = [t0 + timedelta(days=d) for d in range(20)]
    times += [datetime(2024, 1, 14, 23, 50), datetime(2024, 1, 15, 0, 10)]  # one session, 20 min
    ev = pl.DataFrame(
        {
            "user_id": ["a"] * len(times),
            "item_id": ["x"] * len(times),
            "event_type": ["view"] * len(times),
            "timestamp": times,
        }
    )
    sess = sessionize(ev)  # 23:50, 00:00 (the daily event) and 00:10: one session before the cut
    assert (
        sess.filter(
            pl.col("timestamp").dt.day().is_in([14, 15]) & (pl.col("timestamp").dt.hour() != 0)
            | (pl.col("timestamp") == datetime(2024, 1, 15))
        )["session_id"].n_unique()
        == 1
    )
    out = split(_ctx(), sess)
    train, val = out.values["train_events"], out.values["val_events"]
    assert out.facts["sessions_cut"] == 1
    assert train["timestamp"].max() < datetime(2024, 1, 15) <= val["timestamp"].min()
    assert not set(train["session_id"]) & set(val["session_id"])
    assert val.filter(pl.col("timestamp") == datetime(2024, 1, 15, 0, 10))[
        "session_event"
    ].to_list() == [2]
    assert train.filter(pl.col("timestamp") == datetime(2024, 1, 14, 23, 50))[
        "session_events"
    ].to_list() == [1]


def test_too_few_days_is_an_empty_window() -> None:
    ev = sessionize(
        pl.DataFrame(
            {
                "user_id": ["a"],
                "item_id": ["x"],
                "event_type": ["view"],
                "timestamp": [datetime(2024, 1, 1)],
            }
        )
    )
    with pytest.raises(DataError, match="a split window would be empty"):
        split(_ctx(), ev)


def test_generator_plants_personas_patterns_and_imbalance() -> None:
    data = make_clickstream(seed=5, num_users=1500, num_items=200, num_days=28)
    ev = data.events
    assert ev.equals(make_clickstream(seed=5, num_users=1500, num_items=200, num_days=28).events)
    assert not ev.equals(
        make_clickstream(seed=6, num_users=1500, num_items=200, num_days=28).events
    )
    share = ev.filter(pl.col("event_type") == "purchase").height / ev.height
    assert 0.002 < share < 0.03  # extreme imbalance
    hours = ev["timestamp"].dt.hour().value_counts().sort("timestamp")["count"].to_numpy()
    assert hours[19:22].mean() > 4 * hours[2:5].mean()  # evening peak, quiet nights
    weekday = ev["timestamp"].dt.weekday()
    assert (weekday >= 6).mean() / 2 > 1.2 * (weekday <= 5).mean() / 5  # weekend peak
    buyers = (
        ev.join(data.users, on="user_id")
        .group_by("persona")
        .agg((pl.col("event_type") == "purchase").sum() / pl.col("user_id").n_unique())
    )
    rate = dict(buyers.iter_rows())
    assert rate["buyer"] > 3 * rate["browser"]
    assert set(data.items["category"]) and data.items["discount"].is_between(0, 0.5).all()
    assert ev["timestamp"].min() >= datetime(2024, 8, 1)


def test_ranking_metrics_and_class_weights() -> None:
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    score = np.linspace(1, 0, 10)
    m = ranking_metrics(y, score, top_k=(1, 5))
    assert m["precision_at_1"] == 1.0 and m["recall_at_5"] == 1.0 and m["base_rate"] == 0.2
    assert pos_weight(y, "balanced") == 4.0 and pos_weight(y, 3.0) == 3.0
    keep = sample_negatives(y, 1.0, 0)
    assert y[keep].sum() == 2 and len(keep) == 4


def test_xgboost_fits_the_same_trees_on_one_thread_or_all_and_answers_on_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    X = rng.gamma(1.0, 2.0, (20_000, 12))
    y = (rng.random(20_000) < 1 / (1 + np.exp(4 - X[:, 0] + 0.5 * X[:, 1]))).astype(int)
    p = PropensityParams().models
    fitted = {}
    for cores in (1, 2):
        monkeypatch.setattr(modelling, "_cores", lambda cores=cores: cores)
        fitted[cores] = modelling.fit_xgboost(X, y, p, random_state=0)
    one, two = (fitted[c].predict_proba(X)[:, 1] for c in (1, 2))
    assert np.array_equal(one, two)  # bit for bit
    assert roc_auc_score(y, two) > 0.8  # a real model, not a constant
    assert fitted[2].get_params()["n_jobs"] == 1
    config = json.loads(fitted[2].get_booster().save_config())
    assert config["learner"]["generic_param"]["nthread"] == "1"
