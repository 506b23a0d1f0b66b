"""Stages of the propensity recipe; each a pure function ``(ctx, **inputs) -> Out``.

``data-gen``    the events (generated: ``generator: clickstream``, or yours) → events, items,
                users; unknown event types warned, counted and dropped; the funnel
``sessionize``  session ids, start, end, duration and counts (gap > ``params.sessions.gap``)
``split``       70/15/15 by date; a session crossing a boundary is cut there (see below)
``features``    candidate (user, item, prediction time) rows, point-in-time features and labels
``train``       logistic baseline and XGBoost; the better on validation PR-AUC is the model

The split: day boundaries at midnight UTC; each event goes to the split its own
timestamp falls in, so no event after a split's end is in that split. A session
crossing a boundary is cut at it: the part after the boundary is a new session
of the later split. Prediction times of a split are ``start + k * every`` with
``t + horizon <= end``, so a label window never leaves its split; features use
every event before ``t`` (earlier splits included: that is the past).

Example:
    >>> from datetime import datetime
    >>> [d.day for d in split_bounds(datetime(2024, 1, 1), datetime(2024, 1, 20, 5), (0.7, 0.15, 0.15))]
    [1, 15, 18, 21]
"""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from opslens.core.engine import LocalEngine, buckets
from opslens.core.recipe import ModelArtifact, Out, StageContext
from opslens.errors import DataError, OpslensWarning
from opslens.features.events import (
    EVENT_KINDS,
    candidate_rows,
    feature_columns,
    item_popularity,
    join_features,
    label_rows,
    sessionize,
    user_features,
    with_popularity,
)
from opslens.recipes.propensity import plots
from opslens.recipes.propensity.modelling import (
    calibration_table,
    design_matrix,
    fit_logistic,
    fit_xgboost,
    ranking_metrics,
    sample_negatives,
)
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.predictor import PropensityPredictor
from opslens.recipes.propensity.prepare import canonical_events, event_columns
from opslens.recipes.propensity.prepare import item_table as build_items
from opslens.recipes.propensity.prepare import user_table as build_users

__all__ = [
    "BUCKET_EVENTS",
    "POPULARITY_POINTS",
    "data_gen",
    "features",
    "sessionize_stage",
    "split",
    "split_bounds",
    "train",
]

log = logging.getLogger("opslens.propensity")
SPLITS = ("train", "val", "test")


def data_gen(
    ctx: StageContext,
    raw: pl.DataFrame,
    item_table: pl.DataFrame | None,
    user_table: pl.DataFrame | None,
) -> Out:
    """Validated events, the item catalog and the users; the funnel of the events."""
    p: PropensityParams = ctx.params
    cols = event_columns(ctx.analysis)
    events, unknown = canonical_events(raw, cols, p.event_names, where=ctx.source)
    if unknown:
        shown = ", ".join(f"{k} ({v})" for k, v in list(unknown.items())[:5])
        warnings.warn(
            f"{sum(unknown.values())} events of unknown type were dropped: {shown}; "
            "map them with params.event_names",
            OpslensWarning,
            stacklevel=2,
        )
    items = build_items(events, raw, item_table, cols, p.items.id_column, p.items.path)
    users = build_users(events, raw, user_table, cols, p.users.id_column, p.users.path)
    if not _time_then_user_sorted(events):  # generated events come sorted: no sort of 10^7 rows
        events = events.sort("timestamp", "user_id", maintain_order=True)
    per_kind = {
        r["event_type"]: r
        for r in events.group_by("event_type")
        .agg(events=pl.len(), users=pl.col("user_id").n_unique())
        .iter_rows(named=True)
    }
    counts = {k: int(per_kind.get(k, {}).get("events", 0)) for k in EVENT_KINDS}
    reached = {k: int(per_kind.get(k, {}).get("users", 0)) for k in EVENT_KINDS}
    funnel = pl.DataFrame(
        {
            "event_type": list(EVENT_KINDS),
            "events": list(counts.values()),
            "users": list(reached.values()),
        }
    )
    personas: dict[str, int] = {}
    if "persona" in users.columns:
        vc = users["persona"].value_counts(sort=True)
        personas = dict(
            zip(vc["persona"].cast(pl.String).to_list(), vc["count"].to_list(), strict=True)
        )
    log.info("%d events of %d users and %d items", events.height, users.height, items.height)
    return Out(
        values={"events": events, "items": items, "users": users},
        tables={"funnel": funnel},
        facts={
            "events": events.height,
            "users": users.height,
            "items": items.height,
            "start": str(events["timestamp"].min()),
            "end": str(events["timestamp"].max()),
            "event_counts": counts,
            "users_reaching": reached,
            "purchase_share": counts["purchase"] / events.height,
            "view_to_cart": reached["add_to_cart"] / max(reached["view"], 1),
            "cart_to_purchase": reached["purchase"] / max(reached["add_to_cart"], 1),
            "unknown_event_types": unknown,
            "personas": personas,
            "categories": items["category"].n_unique(),
        },
        metrics={
            "events": float(events.height),
            "purchase_share": counts["purchase"] / events.height,
        },
        plots={"funnel": plots.plot_funnel(funnel)},
    )


def _time_then_user_sorted(events: pl.DataFrame) -> bool:
    """Whether ``events`` is already sorted by timestamp, then user id (no nulls in either)."""
    if events["timestamp"].null_count() or events["user_id"].null_count():
        return False
    later = pl.col("timestamp").diff()
    ok = (later > timedelta(0)) | (
        (later == timedelta(0)) & (pl.col("user_id") >= pl.col("user_id").shift())
    )
    return bool(events.select(ok.fill_null(True).all()).item())


def sessionize_stage(ctx: StageContext, events: pl.DataFrame) -> Out:
    """Session id, start, end, duration and event counts per user (inactivity gap)."""
    p: PropensityParams = ctx.params
    # Spark: window functions; local: the polars function (the same sessions, tested)
    native = ctx.engine.sessions(events, gap=p.sessions.gap, by="user_id", time="timestamp")
    out = native if native is not None else sessionize(events, gap=p.sessions.gap)
    sessions = out.filter(pl.col("session_event") == 1)
    with_purchase = out.filter(pl.col("event_type") == "purchase")["session_id"].n_unique()
    return Out(
        values={"sessionized_events": out},
        facts={
            "gap_minutes": p.sessions.gap.total_seconds() / 60,
            "sessions": sessions.height,
            "events_per_session": out.height / max(sessions.height, 1),
            "median_session_minutes": float(sessions["session_seconds"].median() or 0.0) / 60,  # type: ignore[arg-type]
            "sessions_with_purchase": with_purchase,
            "single_event_sessions": sessions.filter(pl.col("session_events") == 1).height,
        },
        metrics={"sessions": float(sessions.height)},
    )


def split_bounds(
    first: datetime, last: datetime, shares: tuple[float, float, float]
) -> list[datetime]:
    """Midnight boundaries ``[train start, val start, test start, end]`` over whole days."""
    start = datetime(first.year, first.month, first.day)
    days = (datetime(last.year, last.month, last.day) - start).days + 1
    n_train = round(shares[0] * days)
    n_val = round(shares[1] * days)
    return [start + timedelta(days=d) for d in (0, n_train, n_train + n_val, days)]


def split(ctx: StageContext, sessionized_events: pl.DataFrame) -> Out:
    """Train/validation/test events by date; sessions cut at the boundaries."""
    p: PropensityParams = ctx.params
    ev = sessionized_events
    first, last = ev["timestamp"].min(), ev["timestamp"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    bounds = split_bounds(first, last, (p.split.train, p.split.val, p.split.test))
    days = [(bounds[i + 1] - bounds[i]).days for i in range(3)]
    if min(days) < 1:
        raise DataError(
            f"the events span {sum(days)} days, too few for a {p.split.train:g}/{p.split.val:g}/{p.split.test:g} "
            "split by date (a split window would be empty)",
            fix="give events over more days, or change params.split",
        )
    labelled = ev.with_columns(
        split=pl.when(pl.col("timestamp") < bounds[1])
        .then(pl.lit("train"))
        .when(pl.col("timestamp") < bounds[2])
        .then(pl.lit("val"))
        .otherwise(pl.lit("test"))
    )
    # a session has events in two splits exactly when a boundary falls in (start, end]:
    # counted on the sessions' first events, not by grouping 10^7 events by their session id
    firsts = ev.filter(pl.col("session_event") == 1)
    crossing = firsts.filter(
        pl.any_horizontal(
            (pl.col("session_start") < b) & (pl.col("session_end") >= b) for b in bounds[1:3]
        )
    ).height
    # sessions again within each split (the cut); each split's events, as a subsequence of
    # the sessionized events, are still sorted by user and time, so no sort is needed there
    plain = labelled.drop(c for c in labelled.columns if c.startswith("session"))
    parts = {
        s: sessionize(
            plain.filter(pl.col("split") == s), gap=p.sessions.gap, by=["user_id", "split"]
        ).sort("timestamp", "user_id", maintain_order=True)
        for s in SPLITS
    }
    for s, part in parts.items():
        if part.height == 0:
            raise DataError(
                f"the {s} window has no events",
                fix="give events over the whole period, or change params.split",
            )
    table = pl.DataFrame(
        {
            "split": list(SPLITS),
            "start": bounds[:3],
            "end": bounds[1:],
            "days": days,
            "events": [parts[s].height for s in SPLITS],
            "users": [parts[s]["user_id"].n_unique() for s in SPLITS],
            "purchases": [
                parts[s].filter(pl.col("event_type") == "purchase").height for s in SPLITS
            ],
        }
    ).with_columns(pl.col("start", "end").cast(pl.Datetime("us")))
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
    ends: dict[str, datetime],
) -> pl.DataFrame:
    """Candidate rows of every split, their features, split and label, for the users in
    ``history`` (all of their events); the item popularity looked up in ``popularity``.

    Exact on any subset of users: the candidates, the user features and the labels use only
    the row's own user's events. Sorted by prediction time, user and item.
    """
    f = p.features
    parts = []
    for name in SPLITS:
        past = history.filter(pl.col("timestamp") < ends[name])  # nothing after the split's end
        rows = candidate_rows(past, times[name], lookback=f.lookback)
        parts.append(rows.with_columns(split=pl.lit(name)))
    rows = pl.concat(parts)
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
    history = pl.concat(
        [e.select(_HISTORY) for e in (train_events, val_events, test_events)],
        how="vertical_relaxed",
    )
    bounds = {r["split"]: (r["start"], r["end"]) for r in split_bounds.to_dicts()}
    times = {s: _prediction_times(p, s, *bounds[s]) for s in SPLITS}
    ends = {s: bounds[s][1] for s in SPLITS}
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
        ends=ends,
    )
    pieces: dict[str, list[pl.DataFrame]] = {s: [] for s in SPLITS}
    if local:
        # buckets of users one after the other, each split off as it comes: at 100,000 users
        # that holds half the memory of the whole table concatenated first
        n_buckets = max(1, -(-history.height // BUCKET_EVENTS))
        bucket = buckets(history["user_id"], n_buckets)
        for b in range(n_buckets):
            done = per_users(history if n_buckets == 1 else history.filter(bucket == b))
            for name, piece in zip(SPLITS, _by_split(done), strict=True):
                pieces[name].append(piece)
            log.info("features: bucket %d of %d, %d rows", b + 1, n_buckets, done.height)
            del done
        del bucket
    else:  # Spark: the same function on each task's users (groupBy(bucket).applyInArrow)
        done = ctx.engine.per_group(history, "user_id", per_users, rows=BUCKET_EVENTS)
        for name, piece in zip(SPLITS, _by_split(done), strict=True):
            pieces[name].append(piece)
        del done
    out: dict[str, pl.DataFrame] = {}
    for name in SPLITS:
        frame = _sorted_by_keys(pl.concat(pieces.pop(name)))
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


def _by_split(frame: pl.DataFrame) -> list[pl.DataFrame]:
    return [frame.filter(pl.col("split") == name).drop("split") for name in SPLITS]


def _importance(model: Any, kind: str, names: list[str]) -> list[tuple[str, float]]:
    if kind == "xgboost":
        gain = model.get_booster().get_score(importance_type="gain")
        values = np.array([gain.get(f"f{i}", 0.0) for i in range(len(names))])
    else:
        values = np.abs(model[-1].coef_[0])
    total = values.sum() or 1.0
    order = np.argsort(-values, kind="stable")
    return [(names[i], float(values[i] / total)) for i in order]


def train(
    ctx: StageContext,
    train_features: pl.DataFrame,
    val_features: pl.DataFrame,
    test_features: pl.DataFrame,
) -> Out:
    """Logistic baseline and XGBoost on train; the better on validation PR-AUC; test metrics."""
    p: PropensityParams = ctx.params
    m = p.models
    cols = feature_columns(p.features.windows)
    y_train = train_features["label"].to_numpy()
    if y_train.sum() == 0:
        raise DataError(
            "the train window has no purchase within the label horizon of any prediction time",
            fix="lengthen params.features.horizon, or give more events",
        )
    categories = sorted(train_features["category"].unique().to_list())
    X = {
        n: design_matrix(f, cols, categories)
        for n, f in (("val", val_features), ("test", test_features))
    }
    keep = sample_negatives(y_train, m.max_negatives_per_positive, ctx.random_state)
    # the design matrix of the fitted rows only (of 10^7 train rows, a few 10^5 are fitted)
    X_fit = design_matrix(train_features[pl.Series(keep)], cols, categories)
    y_fit = y_train[keep]
    fitted = {
        "logistic": fit_logistic(X_fit, y_fit, m, ctx.random_state),
        "xgboost": fit_xgboost(X_fit, y_fit, m, ctx.random_state),
    }
    y_val, y_test = val_features["label"].to_numpy(), test_features["label"].to_numpy()
    scores = {
        k: {s: mdl.predict_proba(X[s])[:, 1] for s in ("val", "test")} for k, mdl in fitted.items()
    }
    results = {
        k: {
            "val": ranking_metrics(y_val, sc["val"], m.top_k),
            "test": ranking_metrics(y_test, sc["test"], m.top_k),
        }
        for k, sc in scores.items()
    }
    best = max(fitted, key=lambda k: (results[k]["val"]["pr_auc"] or 0.0, k == "xgboost"))
    names = cols + [f"category={c}" for c in categories]
    importance = _importance(fitted["xgboost"], "xgboost", names)
    coef = _importance(fitted["logistic"], "logistic", names)
    calib = calibration_table(y_test, scores[best]["test"], m.calibration_bins)
    comparison = pl.DataFrame(
        [
            {"model": k, "split": s, **{kk: v for kk, v in results[k][s].items()}}
            for k in fitted
            for s in ("val", "test")
        ]
    )
    predictions = test_features.select(
        "user_id", "item_id", "prediction_time", "label"
    ).with_columns(**{f"p_{k}": pl.Series(scores[k]["test"]) for k in fitted})
    predictor = PropensityPredictor(
        fitted[best],
        best,
        cols,
        categories,
        horizon_hours=p.features.horizon.total_seconds() / 3600,
    )
    base = results[best]["test"]["base_rate"]
    metrics: dict[str, float] = {"test_base_rate": base}
    for k in fitted:
        for key in ("pr_auc", "roc_auc"):
            if results[k]["test"][key] is not None:
                metrics[f"test_{key}_{k}"] = results[k]["test"][key]
    return Out(
        values={"models": fitted},  # both fitted models, saved with the run (data/models.joblib)
        facts={
            "chosen": best,
            "chosen_by": "validation PR-AUC",
            "train_rows": len(y_train),
            "train_positives": int(y_train.sum()),
            "fit_rows": len(y_fit),
            "scale_pos_weight": float(fitted["xgboost"].get_params()["scale_pos_weight"]),
            "results": results,
            "top_features": [[n, v] for n, v in importance[:10]],
            "logistic_top_features": [[n, v] for n, v in coef[:10]],
            "calibration": calib.to_dicts(),
            "top_k": list(m.top_k),
        },
        metrics=metrics,
        tables={
            "model_comparison": comparison,
            "test_predictions": predictions,
            "calibration": calib,
        },
        plots={
            "calibration": plots.plot_calibration(calib, best),
            "pr_curve": plots.plot_pr_curves(y_test, {k: scores[k]["test"] for k in fitted}),
            "feature_importance": plots.plot_importance(importance[:15]),
        },
        model=ModelArtifact(
            model=predictor,
            input_example=test_features.head(5),
            metadata={
                "recipe": "propensity",
                "model": best,
                "features": cols,
                "categories": categories,
                "output": "probability: a purchase of the item by the user within the horizon",
            },
        ),
    )
