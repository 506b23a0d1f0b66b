"""The ``features`` stage of the propensity recipe: candidate rows, point-in-time features and
labels of every split, in buckets of users.

Prediction times of a split are ``start + k * every`` with ``t + horizon <= end``, so a
label window never leaves its split; features use every event before ``t`` (earlier
splits included: that is the past). The features themselves are
:mod:`opslens.recipes.propensity.point_in_time`.

Example:
    >>> from datetime import datetime
    >>> p = PropensityParams.model_validate({"features": {"every": "1d", "horizon": "2d"}})
    >>> [t.day for t in _prediction_times(p, "test", datetime(2024, 1, 1), datetime(2024, 1, 5))]
    [1, 2, 3]
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

import polars as pl

from opslens.core.engine import LocalEngine, buckets
from opslens.core.recipe import Out, StageContext
from opslens.errors import DataError
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import (
    candidate_rows,
    feature_columns,
    item_popularity,
    join_features,
    label_rows,
    user_features,
    with_popularity,
)

__all__ = ["BUCKET_EVENTS", "POPULARITY_POINTS", "SPLITS", "features"]

log = logging.getLogger("opslens.propensity")
SPLITS = ("train", "val", "test")


def _prediction_times(
    p: PropensityParams, name: str, start: datetime, end: datetime
) -> list[datetime]:
    f = p.features
    times = []
    t = start
    while t + f.horizon <= end:
        times.append(t)
        t += f.every
    if not times:
        raise DataError(
            f"the {name} window ({start:%Y-%m-%d} to {end:%Y-%m-%d}) is shorter than the label "
            f"horizon, so it has no prediction times",
            fix="shorten params.features.horizon or params.features.every, or give more days",
        )
    return times


# events per bucket of users in the features stage: bounds its peak memory
BUCKET_EVENTS = 2_500_000
# at most this many (item, prediction time) points in the popularity table made at once
POPULARITY_POINTS = 5_000_000
KEYS = ["user_id", "item_id", "prediction_time"]
_HISTORY = (
    "user_id",
    "item_id",
    "event_type",
    "timestamp",
    "session_event",
    "session_start",
    "session_carts",
)


def _bucket_features(
    p: PropensityParams,
    history: pl.DataFrame,
    items: pl.DataFrame,
    popularity: pl.DataFrame | None,
    item_events: pl.DataFrame,
    times: dict[str, list[datetime]],
) -> pl.DataFrame:
    """Candidate rows of every split, their features, split and label, for the users in
    ``history`` (all of their events); the item popularity looked up in ``popularity``.

    Exact on any subset of users: the candidates, the user features and the labels use only
    the row's own user's events. Sorted by prediction time, user and item.
    """
    f = p.features
    # one pass for every split: a prediction time t of a split has t + horizon <= its end, so
    # the events of [t - lookback, t) all lie before that end (no later event makes a row)
    every = candidate_rows(
        history, sorted({t for s in SPLITS for t in times[s]}), lookback=f.lookback
    )
    rows = pl.concat(
        every.filter(pl.col("prediction_time").is_in(times[name])).with_columns(split=pl.lit(name))
        for name in SPLITS
    )
    users = user_features(
        rows, history, items, windows=f.windows, recency_cap_hours=f.recency_cap_hours
    )
    if popularity is None:  # too many items x times for one table: this bucket's points only
        popularity = item_popularity(users, item_events, windows=f.windows)
    feats = join_features(users, with_popularity(users, popularity, f.windows), f.windows)
    feats = feats.join(rows, on=KEYS, how="left", maintain_order="left")
    return label_rows(feats, history, horizon=f.horizon)


def features(
    ctx: StageContext,
    train_events: pl.DataFrame,
    val_events: pl.DataFrame,
    test_events: pl.DataFrame,
    split_bounds: pl.DataFrame,
    items: pl.DataFrame,
) -> Out:
    """Point-in-time features and labels of each split's candidate rows, in buckets of users.

    One pass over the history for every split's rows: each row sees only events before its
    own time, and its label window ends inside its split (t + horizon <= split end). The
    users are cut into buckets of about ``BUCKET_EVENTS`` events, each done on its own
    (everything but the item popularity depends only on the row's user), so the peak memory
    is bounded by a bucket, not the whole history; the item popularity (from everyone's
    events) is computed once for every item and prediction time and looked up. The result
    is the same as in one piece.
    """
    p: PropensityParams = ctx.params
    wins = p.features.windows
    if ctx.engine.distributed:  # the events and the features stay on the engine (.kept)
        from opslens.recipes.propensity.kept import features_kept

        bounds = {r["split"]: (r["start"], r["end"]) for r in split_bounds.to_dicts()}
        times = {s: _prediction_times(p, s, *bounds[s]) for s in SPLITS}
        return features_kept(ctx, (train_events, val_events, test_events), items, times)
    history = pl.concat(
        [e.select(_HISTORY) for e in (train_events, val_events, test_events)],
        how="vertical_relaxed",
    )
    bounds = {r["split"]: (r["start"], r["end"]) for r in split_bounds.to_dicts()}
    times = {s: _prediction_times(p, s, *bounds[s]) for s in SPLITS}
    # the item popularity of every item at every prediction time, once (a small table); only
    # locally, where it would be too large, is it computed per bucket from every event
    every_time = pl.DataFrame({"prediction_time": [t for s in SPLITS for t in times[s]]})
    local = isinstance(ctx.engine, LocalEngine)
    popularity = None
    if items.height * every_time.height <= POPULARITY_POINTS or not local:
        points = items.select("item_id").join(
            every_time.with_columns(pl.col("prediction_time").cast(pl.Datetime("us"))),
            how="cross",
        )
        popularity = item_popularity(points, history, windows=wins)
    per_users = partial(
        _bucket_features,
        p,
        items=items,
        popularity=popularity,
        item_events=history if popularity is None else history.clear(),
        times=times,
    )
    pieces: dict[str, dict[datetime, list[pl.DataFrame]]] = {s: {} for s in SPLITS}
    if local:
        # buckets of users one after the other, each cut by split and prediction time as it
        # comes: at 100,000 users that holds half the memory of the whole table concatenated
        n_buckets = max(1, -(-history.height // BUCKET_EVENTS))
        bucket = buckets(history["user_id"], n_buckets)
        for b in range(n_buckets):
            done = per_users(history if n_buckets == 1 else history.filter(bucket == b))
            _file(pieces, done)
            log.info("features: bucket %d of %d, %d rows", b + 1, n_buckets, done.height)
            del done
        del bucket
    else:  # Spark: the same function on each task's users (groupBy(bucket).applyInArrow)
        done = ctx.engine.per_group(history, "user_id", per_users, rows=BUCKET_EVENTS)
        _file(pieces, done)
        del done
    out: dict[str, pl.DataFrame] = {}
    for name in SPLITS:
        by_time = pieces.pop(name)
        frame = _in_key_order(by_time) if by_time else pl.DataFrame()
        if frame.height == 0:
            raise DataError(
                f"the {name} window has no (user, item) pair with an event in the lookback "
                "before any prediction time",
                fix="lengthen params.features.lookback",
            )
        out[name] = frame
        del frame
        log.info("%s: %d rows, %d positive", name, out[name].height, int(out[name]["label"].sum()))

    cols = feature_columns(p.features.windows)
    return Out(
        values={f"{s}_features": out[s] for s in SPLITS},
        facts={
            "features": cols,
            "n_features": len(cols),
            "horizon_days": p.features.horizon.total_seconds() / 86400,
            "lookback_days": p.features.lookback.total_seconds() / 86400,
            "every_hours": p.features.every.total_seconds() / 3600,
            "rows": {s: out[s].height for s in SPLITS},
            "positives": {s: int(out[s]["label"].sum()) for s in SPLITS},
            "base_rate": {s: float(out[s]["label"].mean() or 0.0) for s in SPLITS},  # type: ignore[arg-type]
        },
        metrics={f"rows_{s}": float(out[s].height) for s in SPLITS},
    )


def _sorted_by_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame.sort("prediction_time", "user_id", "item_id")`` for unique keys, one column at
    a time: each column is released once gathered, so the peak is one copy of the frame plus
    a column, not two copies."""
    order = frame.select(pl.arg_sort_by("prediction_time", "user_id", "item_id")).to_series()
    columns = {}
    for name in frame.columns:
        columns[name] = frame.get_column(name).gather(order)
        frame = frame.drop(name)
    return pl.DataFrame(columns)


#: rows of each sorted chunk of a features table (its prediction times put together)
CHUNK_ROWS = 1_000_000


def _file(pieces: dict[str, dict[datetime, list[pl.DataFrame]]], done: pl.DataFrame) -> None:
    """Cut ``done`` (a bucket's rows) by split and prediction time into ``pieces``."""
    parts = done.partition_by("split", "prediction_time", as_dict=True, maintain_order=True)
    for (name, t), part in parts.items():
        assert isinstance(name, str) and isinstance(t, datetime)
        pieces[name].setdefault(t, []).append(part.drop("split"))


def _in_key_order(by_time: dict[datetime, list[pl.DataFrame]]) -> pl.DataFrame:
    """The pieces of one split as one frame sorted by prediction time, user and item (unique
    keys): the prediction times in order, about ``CHUNK_ROWS`` rows sorted at a time, each
    piece released once sorted (the whole table is never copied at once).

    Example:
        >>> from datetime import datetime
        >>> t1, t2 = datetime(2024, 1, 1), datetime(2024, 1, 8)
        >>> def f(u, t): return pl.DataFrame({"user_id": u, "item_id": "x", "prediction_time": [t]})
        >>> _in_key_order({t2: [f("b", t2), f("a", t2)], t1: [f("c", t1)]})["user_id"].to_list()
        ['c', 'a', 'b']
    """
    chunks, batch, rows = [], [], 0
    for t in sorted(by_time):
        for piece in by_time.pop(t):
            batch.append(piece)
            rows += piece.height
        if rows >= CHUNK_ROWS:
            chunks.append(_sorted_by_keys(pl.concat(batch)))
            batch, rows = [], 0
    if batch:
        chunks.append(_sorted_by_keys(pl.concat(batch)))
    del batch
    return pl.concat(chunks, rechunk=False)


def split_out(parts: dict[str, Any], table: pl.DataFrame, crossing: int) -> Out:
    """The split stage's output: each split's events (a frame, or a frame kept on the engine),
    the bounds table and the facts of the rule, the same on every engine.

    Example:
        >>> table = pl.DataFrame({"split": ["train"], "start": [None], "end": [None]})
        >>> split_out({"train": 1, "val": 2, "test": 3}, table, 0).metrics
        {'sessions_cut': 0.0}
    """
    return Out(
        values={
            "train_events": parts["train"],
            "val_events": parts["val"],
            "test_events": parts["test"],
            "split_bounds": table,
        },
        facts={
            "rule": "each event goes to the split of its own timestamp; a session crossing a "
            "boundary is cut there and its later part is a new session of the later split",
            "splits": [
                {**r, "start": str(r["start"]), "end": str(r["end"])} for r in table.to_dicts()
            ],
            "sessions_cut": crossing,
        },
        metrics={"sessions_cut": float(crossing)},
    )
