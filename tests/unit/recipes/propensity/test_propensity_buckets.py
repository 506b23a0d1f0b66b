"""The features stage in buckets of users gives exactly the result in one piece."""

from __future__ import annotations

import polars as pl
import pytest

from opslens.config import AnalysisConfig
from opslens.core.engine import buckets
from opslens.core.recipe import StageContext
from opslens.recipes.propensity import featurize, stages
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import point_in_time_features
from opslens.synthetic.clickstream import make_clickstream


def _ctx() -> StageContext:
    analysis = AnalysisConfig.model_validate(
        {"name": "p", "recipe": "propensity", "source": {"kind": "memory"}}
    )
    params = PropensityParams.model_validate(
        {"features": {"every": "1d", "lookback": "5d", "horizon": "3d"}}
    )
    return StageContext(analysis=analysis, params=params, random_state=0)


def _features(split: dict[str, pl.DataFrame], items: pl.DataFrame) -> dict[str, pl.DataFrame]:
    out = featurize.features(_ctx(), items=items, **split)
    return {k: v for k, v in out.values.items()}


def test_bucketed_features_equal_the_unbucketed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_clickstream(seed=11, num_users=600, num_items=80, num_days=30)
    ctx = _ctx()
    sessions = stages.sessionize_stage(ctx, data.events).values["sessionized_events"]
    split = stages.split(ctx, sessions).values
    n_events = sessions.height
    monkeypatch.setattr(featurize, "BUCKET_EVENTS", 10 * n_events)  # one bucket
    whole = _features(split, data.items)
    monkeypatch.setattr(featurize, "BUCKET_EVENTS", n_events // 7)  # 8 buckets
    bucketed = _features(split, data.items)
    assert set(whole) == {"train_features", "val_features", "test_features"}
    for name, frame in whole.items():
        assert frame.height > 100 and frame["label"].sum() > 0
        assert frame.columns[-1] == "label"
        assert bucketed[name].equals(frame), name
    assert buckets(sessions["user_id"], 8).n_unique() == 8  # the users really were cut in 8


def test_data_gen_skips_the_sort_only_when_already_sorted() -> None:
    from datetime import datetime

    t = [datetime(2024, 1, 1), datetime(2024, 1, 1), datetime(2024, 1, 2)]
    ok = pl.DataFrame({"timestamp": t, "user_id": ["a", "b", "a"]})
    assert stages._time_then_user_sorted(ok)
    assert not stages._time_then_user_sorted(ok.with_columns(user_id=pl.Series(["b", "a", "a"])))
    assert not stages._time_then_user_sorted(ok.reverse())
    assert not stages._time_then_user_sorted(ok.with_columns(user_id=pl.Series(["a", None, "b"])))


@pytest.mark.parametrize("points", [10**9, 0])  # one popularity table; per bucket
def test_the_stage_features_are_point_in_time_features(
    monkeypatch: pytest.MonkeyPatch, points: int
) -> None:
    data = make_clickstream(seed=12, num_users=400, num_items=50, num_days=30)
    ctx = _ctx()
    sessions = stages.sessionize_stage(ctx, data.events).values["sessionized_events"]
    split = stages.split(ctx, sessions).values
    monkeypatch.setattr(featurize, "BUCKET_EVENTS", sessions.height // 3)
    monkeypatch.setattr(featurize, "POPULARITY_POINTS", points)
    got = _features(split, data.items)
    history = pl.concat([split[f"{s}_events"] for s in ("train", "val", "test")])
    windows = ctx.params.features.windows
    for frame in got.values():
        keys = frame.select("user_id", "item_id", "prediction_time")
        expected = point_in_time_features(keys, history, data.items, windows=windows)
        assert frame.drop("label").equals(expected)


def test_each_split_has_the_candidates_of_its_own_past() -> None:
    """The candidates of every split come from one pass over the whole history: the same rows
    as from the events before each split's end alone (no later event makes a row)."""
    from opslens.recipes.propensity.point_in_time import candidate_rows

    data = make_clickstream(seed=13, num_users=300, num_items=40, num_days=30)
    ctx = _ctx()
    sessions = stages.sessionize_stage(ctx, data.events).values["sessionized_events"]
    split = stages.split(ctx, sessions).values
    got = _features(split, data.items)
    history = pl.concat([split[f"{s}_events"] for s in featurize.SPLITS])
    for bound in split["split_bounds"].iter_rows(named=True):
        name, start, end = bound["split"], bound["start"], bound["end"]
        times = featurize._prediction_times(ctx.params, name, start, end)
        past = history.filter(pl.col("timestamp") < end)
        expected = candidate_rows(past, times, lookback=ctx.params.features.lookback)
        keys = got[f"{name}_features"].select(featurize.KEYS)
        assert expected.height > 100 and keys.equals(expected), name
