"""Propensity on a distributed engine (``engine: spark``): the events never reach the driver.

The stages of :mod:`.stages` and :mod:`.featurize` hand their work here when
``ctx.engine.distributed``. Every table stays an **engine frame** (on Spark a
DataFrame on the executors, written by them as Parquet by the runner); the
driver gets only small answers (``Engine.summarise``: counts, bounds, the item
and user tables) and, in training, the sample (:mod:`.training`). Only the
engine contract is used (no Spark here), and the row-wise work is the very
polars code of the local path, run on the engine's batches:

* ``data-gen``: the events normalised batch by batch (:func:`normalised`), the
  funnel, items and users from aggregations;
* ``sessionize``: the engine's sessions (Spark: window functions);
* ``split``: each split's events filtered batch by batch, its sessions cut at the
  boundaries by the engine's sessions again (by user and split);
* item popularity: a Spark aggregation (:func:`popularity_deltas` per batch, summed
  per item and prediction time, a running sum here on the small sums);
* point-in-time features: ``per_group(..., keep=True)`` of the same function the
  local engine runs per bucket of users (Spark: ``applyInArrow``).

The results equal the local engine's (tests/e2e/spark), but row order, which no
answer depends on.

Example:
    >>> from datetime import datetime, timedelta
    >>> batch = pl.DataFrame({"item_id": ["x", "x"], "event_type": ["view", "purchase"],
    ...     "timestamp": [datetime(2024, 1, 1, 12), datetime(2024, 1, 2, 12)]})
    >>> grid = [datetime(2024, 1, 2), datetime(2024, 1, 3)]
    >>> popularity_table(pl.DataFrame({"item_id": ["x"]}), grid, popularity_deltas(batch,
    ...     grid=grid, windows=[timedelta(days=1)]), [timedelta(days=1)]).rows()
    [('x', datetime.datetime(2024, 1, 2, 0, 0), 1, 0), ('x', datetime.datetime(2024, 1, 3, 0, 0), 0, 1)]
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from opslens.core.columns import parse_time
from opslens.core.engine import Engine
from opslens.core.recipe import Out, StageContext
from opslens.errors import DataError, OpslensWarning
from opslens.recipes.propensity import plots
from opslens.recipes.propensity._past import item_columns, micros, window_label
from opslens.recipes.propensity.featurize import SPLITS, split_out
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import EVENT_KINDS, feature_columns
from opslens.recipes.propensity.prepare import EventColumns, event_columns
from opslens.recipes.propensity.prepare import item_table as build_items

__all__ = [
    "data_gen_kept",
    "features_kept",
    "normalised",
    "popularity_deltas",
    "popularity_table",
    "sessionize_kept",
    "split_kept",
]

log = logging.getLogger("opslens.propensity")
_ITEM_ROLES = ("category", "price", "discount")


def normalised(
    batch: pl.DataFrame, cols: EventColumns, names: Mapping[str, str], where: str
) -> pl.DataFrame:
    """The row-wise part of :func:`.prepare.canonical_events` on one batch: user_id, item_id,
    event_type (normalised: one of the four kinds when known), timestamp, ``_known``.

    Example:
        >>> from datetime import datetime
        >>> raw = pl.DataFrame({"user_id": [1], "item_id": ["x"], "event_type": ["Add-To-Cart"],
        ...     "timestamp": [datetime(2024, 1, 1)]})
        >>> normalised(raw, EventColumns(), {}, "e").row(0)[2:]
        ('add_to_cart', datetime.datetime(2024, 1, 1, 0, 0), True)
    """
    frame = parse_time(batch, cols.time, where=where)
    kind = pl.col(cols.event_type).cast(pl.String)
    if names:
        kind = kind.replace(dict(names))
    kind = kind.str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    out = frame.select(
        pl.col(cols.user).cast(pl.String).alias("user_id"),
        pl.col(cols.item).cast(pl.String).alias("item_id"),
        kind.alias("event_type"),
        pl.col(cols.time).alias("timestamp"),
    )
    return out.with_columns(_known=pl.col("event_type").is_in(list(EVENT_KINDS)).fill_null(False))


def _known_events(batch: pl.DataFrame) -> pl.DataFrame:
    return (
        batch.filter(pl.col("_known"))
        .drop("_known")
        .drop_nulls(["user_id", "item_id", "timestamp"])
    )


def _require(engine: Engine, raw: Any, cols: EventColumns, where: str) -> None:
    """The one-line errors of :func:`.prepare.canonical_events` on the columns, from the
    first rows (the events stay where they are)."""
    from opslens.core.columns import require_columns

    head = engine.head(raw, 1)
    require_columns(head, [cols.user, cols.item, cols.time], where=where)
    if cols.event_type not in head.columns:
        raise DataError(
            f"the event-type column '{cols.event_type}' is not in {where} "
            f"(columns: {', '.join(head.columns[:20])})",
            fix="name the event-type column under columns.target in project.yaml",
        )


def _users(engine: Engine, events: Any, raw: Any, cols: EventColumns, table: Any, p: Any) -> Any:
    """:func:`.prepare.user_table` from an aggregation of the events per user."""
    from opslens.core.columns import require_columns
    from opslens.recipes.propensity.prepare import _mismatch

    seen = engine.summarise(
        events,
        {
            "events": ("count", "*"),
            "first_seen": ("min", "timestamp"),
            "last_seen": ("max", "timestamp"),
        },
        by=["user_id"],
    ).with_columns(pl.col("events").cast(pl.UInt32))
    if table is not None:
        key = p.users.id_column or (cols.user if cols.user in table.columns else table.columns[0])
        require_columns(table, [key], where=f"the user table {p.users.path}")
        given = table.rename({key: "user_id"}).with_columns(pl.col("user_id").cast(pl.String))
        missing = seen.select("user_id").join(given, on="user_id", how="anti")
        if missing.height:
            raise _mismatch("user", missing["user_id"].sort(), p.users.path)
        return seen.join(given.unique("user_id", keep="first"), on="user_id", how="left").sort(
            "user_id"
        )
    if "persona" in engine.head(raw, 0).columns:
        persona = (
            engine.summarise(raw, {"_n": ("count", "*")}, by=[cols.user, "persona"])
            .select(pl.col(cols.user).cast(pl.String).alias("user_id"), "persona")
            .unique("user_id", keep="first", maintain_order=True)
        )
        seen = seen.join(persona, on="user_id", how="left")
    return seen.sort("user_id")


def data_gen_kept(ctx: StageContext, raw: Any, item_table: Any, user_table: Any) -> Out:
    """:func:`.stages.data_gen` on engine frames: the events stay on the engine."""
    p: PropensityParams = ctx.params
    engine, where = ctx.engine, ctx.source
    cols = event_columns(ctx.analysis)
    _require(engine, raw, cols, where)
    normal = engine.map_batches(
        raw, partial(normalised, cols=cols, names=dict(p.event_names), where=where), keep=True
    )
    kinds = engine.summarise(
        normal,
        {"events": ("count", "*"), "users": ("n_unique", "user_id"), "known": ("max", "_known")},
        by=["event_type"],
    )
    unknown_rows = kinds.filter(~pl.col("known").fill_null(False)).sort(
        "events", descending=True, maintain_order=True
    )
    unknown = {
        (k if k is not None else "<empty>"): int(v)
        for k, v in unknown_rows.select("event_type", "events").iter_rows()
    }
    if unknown:
        shown = ", ".join(f"{k} ({v})" for k, v in list(unknown.items())[:5])
        warnings.warn(
            f"{sum(unknown.values())} events of unknown type were dropped: {shown}; "
            "map them with params.event_names",
            OpslensWarning,
            stacklevel=2,
        )
    events = engine.map_batches(normal, _known_events, keep=True)
    per_kind = {
        r["event_type"]: r
        for r in engine.summarise(
            events, {"events": ("count", "*"), "users": ("n_unique", "user_id")}, by=["event_type"]
        ).iter_rows(named=True)
    }
    n_events = sum(int(r["events"]) for r in per_kind.values())
    if n_events == 0:
        raise DataError(
            f"no events of {where} are of a known type ({', '.join(EVENT_KINDS)})",
            fix="map your event names with params.event_names",
        )
    if "purchase" not in per_kind:
        raise DataError(
            f"{where} holds no purchase events, so there is nothing to predict",
            fix="include purchases, or map your purchase event with params.event_names",
        )
    # the item table: the given one, else each item's attributes from the events
    seen_items = engine.summarise(events, {"_n": ("count", "*")}, by=["item_id"]).select("item_id")
    raw_columns = engine.head(raw, 0).columns
    if item_table is None:
        wanted = [c for c in (*_ITEM_ROLES, *p.items.columns.values()) if c in raw_columns]
        attrs = engine.summarise(
            raw, {"_n": ("count", "*")}, by=[cols.item, *dict.fromkeys(wanted)]
        )
        attrs = attrs.drop("_n").filter(pl.col(cols.item).is_not_null())
    else:
        attrs = seen_items
    items = build_items(
        seen_items, attrs, item_table, cols, p.items.id_column, p.items.path, p.items.columns
    )
    users = _users(engine, events, raw, cols, user_table, p)
    bounds = engine.summarise(events, {"start": ("min", "timestamp"), "end": ("max", "timestamp")})
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
    log.info("%d events of %d users and %d items", n_events, users.height, items.height)
    return Out(
        values={"events": events, "items": items, "users": users},
        tables={"funnel": funnel},
        facts={
            "events": n_events,
            "users": users.height,
            "items": items.height,
            "start": str(bounds["start"][0]),
            "end": str(bounds["end"][0]),
            "event_counts": counts,
            "users_reaching": reached,
            "purchase_share": counts["purchase"] / n_events,
            "view_to_cart": reached["add_to_cart"] / max(reached["view"], 1),
            "cart_to_purchase": reached["purchase"] / max(reached["add_to_cart"], 1),
            "unknown_event_types": unknown,
            "personas": personas,
            "categories": items["category"].n_unique(),
        },
        metrics={"events": float(n_events), "purchase_share": counts["purchase"] / n_events},
        plots={"funnel": plots.plot_funnel(funnel)},
    )


def _session_firsts(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.filter(pl.col("session_event") == 1).select(
        "session_seconds", single=(pl.col("session_events") == 1).cast(pl.Int64)
    )


def _purchase_sessions(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.filter(pl.col("event_type") == "purchase").select("session_id")


def sessionize_kept(ctx: StageContext, events: Any) -> Out:
    """:func:`.stages.sessionize_stage` with the engine's sessions, left on the engine."""
    p: PropensityParams = ctx.params
    engine = ctx.engine
    out = engine.sessions(events, gap=p.sessions.gap, by="user_id", time="timestamp", keep=True)
    firsts = engine.summarise(
        engine.map_batches(out, _session_firsts, keep=True),
        {
            "sessions": ("count", "*"),
            "median": ("median", "session_seconds"),
            "single": ("sum", "single"),
        },
    ).row(0, named=True)
    bought = engine.summarise(
        engine.map_batches(out, _purchase_sessions, keep=True), {"n": ("n_unique", "session_id")}
    ).item()
    n_sessions, total = int(firsts["sessions"]), engine.height(out)
    return Out(
        values={"sessionized_events": out},
        facts={
            "gap_minutes": p.sessions.gap.total_seconds() / 60,
            "sessions": n_sessions,
            "events_per_session": total / max(n_sessions, 1),
            "median_session_minutes": float(firsts["median"] or 0.0) / 60,
            "sessions_with_purchase": int(bought or 0),
            "single_event_sessions": int(firsts["single"] or 0),
        },
        metrics={"sessions": float(n_sessions)},
    )


def _crossing(batch: pl.DataFrame, bounds: Sequence[datetime]) -> pl.DataFrame:
    firsts = batch.filter(pl.col("session_event") == 1)
    return firsts.filter(
        pl.any_horizontal(
            (pl.col("session_start") < b) & (pl.col("session_end") >= b) for b in bounds
        )
    ).select("session_id")


def _in_split(
    batch: pl.DataFrame, name: str, low: datetime | None, high: datetime | None
) -> pl.DataFrame:
    keep = pl.lit(True)
    if low is not None:
        keep = keep & (pl.col("timestamp") >= low)
    if high is not None:
        keep = keep & (pl.col("timestamp") < high)
    plain = [c for c in batch.columns if not c.startswith("session")]
    return batch.filter(keep).select(plain).with_columns(split=pl.lit(name))


def _purchase_flag(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.select("user_id", purchase=(pl.col("event_type") == "purchase").cast(pl.Int64))


def split_kept(ctx: StageContext, sessionized_events: Any) -> Out:
    """:func:`.stages.split` on engine frames: each split filtered and its sessions cut again
    by the engine (by user and split)."""
    from opslens.recipes.propensity.stages import split_bounds

    p: PropensityParams = ctx.params
    engine, ev = ctx.engine, sessionized_events
    span = engine.summarise(ev, {"first": ("min", "timestamp"), "last": ("max", "timestamp")})
    first, last = span["first"][0], span["last"][0]
    assert isinstance(first, datetime) and isinstance(last, datetime)
    bounds = split_bounds(first, last, (p.split.train, p.split.val, p.split.test))
    days = [(bounds[i + 1] - bounds[i]).days for i in range(3)]
    if min(days) < 1:
        raise DataError(
            f"the events span {sum(days)} days, too few for a {p.split.train:g}/{p.split.val:g}/{p.split.test:g} "
            "split by date (a split window would be empty)",
            fix="give events over more days, or change params.split",
        )
    crossing = engine.height(
        engine.map_batches(ev, partial(_crossing, bounds=bounds[1:3]), keep=True)
    )
    windows = {"train": (None, bounds[1]), "val": (bounds[1], bounds[2]), "test": (bounds[2], None)}
    parts: dict[str, Any] = {}
    rows: dict[str, dict[str, int]] = {}
    for s in SPLITS:
        inside = engine.map_batches(
            ev, partial(_in_split, name=s, low=windows[s][0], high=windows[s][1]), keep=True
        )
        parts[s] = engine.sessions(
            inside, gap=p.sessions.gap, by=["user_id", "split"], time="timestamp", keep=True
        )
        got = engine.summarise(
            engine.map_batches(parts[s], _purchase_flag, keep=True),
            {
                "events": ("count", "*"),
                "users": ("n_unique", "user_id"),
                "purchases": ("sum", "purchase"),
            },
        ).row(0, named=True)
        rows[s] = {k: int(v or 0) for k, v in got.items()}
        if rows[s]["events"] == 0:
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
            "events": [rows[s]["events"] for s in SPLITS],
            "users": [rows[s]["users"] for s in SPLITS],
            "purchases": [rows[s]["purchases"] for s in SPLITS],
        }
    ).with_columns(pl.col("start", "end").cast(pl.Datetime("us")))
    return split_out(parts, table, crossing)


def popularity_deltas(
    batch: pl.DataFrame, *, grid: Sequence[datetime], windows: Sequence[timedelta]
) -> pl.DataFrame:
    """Per item, popularity column and prediction-time index ``k``: the change of the count at
    ``k`` from this batch's views and purchases (an event at ``ts`` counts at every grid time
    ``t`` with ``ts < t < ts + w``: +1 where that run starts, -1 after it ends). Summed over
    all batches and run along ``k`` they are :func:`.popularity.item_popularity`'s counts.
    """
    times = sorted(set(grid))  # k numbers the distinct grid times in order
    grid_us = pl.Series(times, dtype=pl.Datetime("us")).to_physical().to_numpy()
    ev = batch.filter(pl.col("event_type").is_in(["view", "purchase"])).select(
        "item_id", "event_type", pl.col("timestamp").cast(pl.Datetime("us"))
    )
    t = ev["timestamp"].to_physical().to_numpy()
    lo = np.searchsorted(grid_us, t, side="right")
    kinds = ev["event_type"].to_numpy()
    items = ev["item_id"]
    parts = []
    for kind, name in (("view", "item_views"), ("purchase", "item_purchases")):
        is_kind = kinds == kind
        for w in windows:
            hi = np.searchsorted(grid_us, t + micros(w), side="left")
            run = is_kind & (lo < hi)
            column = f"{name}_{window_label(w)}"
            starts = pl.DataFrame(
                {"item_id": items.filter(pl.Series(run)), "k": lo[run], "delta": 1}
            )
            ends = run & (hi < len(grid_us))
            stops = pl.DataFrame(
                {"item_id": items.filter(pl.Series(ends)), "k": hi[ends], "delta": -1}
            )
            parts += [f.with_columns(column=pl.lit(column)) for f in (starts, stops)]
    schema = pl.Schema(
        {"item_id": pl.String(), "k": pl.Int64(), "delta": pl.Int64(), "column": pl.String()}
    )
    frame = pl.concat([f.cast(schema) for f in parts]) if parts else pl.DataFrame(schema=schema)
    return frame.group_by("item_id", "column", "k").agg(pl.col("delta").sum().cast(pl.Int64))


def popularity_table(
    items: pl.DataFrame,
    grid: Sequence[datetime],
    deltas: pl.DataFrame,
    windows: Sequence[timedelta],
) -> pl.DataFrame:
    """The item popularity of every item at every grid time from the summed
    :func:`popularity_deltas`: :func:`.popularity.item_popularity`'s table (sorted by
    prediction time and item)."""
    ids = items.select("item_id").unique().sort("item_id")
    times = sorted(set(grid))
    n, k = ids.height, len(times)
    index = ids.with_row_index("_i")
    known = deltas.join(index, on="item_id", how="inner")
    columns: dict[str, np.ndarray] = {}
    for column in item_columns(windows):
        mine = known.filter(pl.col("column") == column)
        dense = np.zeros((n, k), dtype=np.int64)
        np.add.at(dense, (mine["_i"].to_numpy(), mine["k"].to_numpy()), mine["delta"].to_numpy())
        columns[column] = np.cumsum(dense, axis=1).T.reshape(-1)  # time-major: k, then item
    frame = pl.DataFrame(
        {
            "item_id": pl.concat([ids["item_id"]] * k) if k else ids["item_id"].clear(),
            "prediction_time": pl.Series(
                [t for t in times for _ in range(n)], dtype=pl.Datetime("us")
            ),
        }
    ).with_columns(pl.Series(c, v, dtype=pl.Int64) for c, v in columns.items())
    return frame.sort("prediction_time", "item_id")


def _users_only(history: pl.DataFrame, func: Any, columns: Sequence[str]) -> pl.DataFrame:
    out: pl.DataFrame = func(history.select(columns))
    return out


def _of_split(batch: pl.DataFrame, name: str) -> pl.DataFrame:
    return batch.filter(pl.col("split") == name).drop("split")


def features_kept(
    ctx: StageContext,
    splits: Sequence[Any],
    items: pl.DataFrame,
    times: dict[str, list[datetime]],
) -> Out:
    """:func:`.featurize.features` on engine frames: item popularity as an aggregation, the
    point-in-time features of each bucket of users by ``per_group(..., keep=True)``."""
    from opslens.recipes.propensity.featurize import _HISTORY, BUCKET_EVENTS, _bucket_features

    p: PropensityParams = ctx.params
    engine, wins = ctx.engine, list(p.features.windows)
    history = engine.concat(list(splits))
    grid = sorted({t for s in SPLITS for t in times[s]})
    deltas = engine.summarise(
        engine.map_batches(history, partial(popularity_deltas, grid=grid, windows=wins), keep=True),
        {"delta": ("sum", "delta")},
        by=["item_id", "column", "k"],
    )
    popularity = popularity_table(items, grid, deltas, wins)
    log.info("item popularity: %d items x %d times", items.height, len(grid))
    empty = engine.head(history, 0).select(_HISTORY)
    per_users = partial(
        _bucket_features,
        p,
        items=items,
        popularity=popularity,
        item_events=empty,
        times=times,
    )
    done = engine.per_group(
        history,
        "user_id",
        partial(_users_only, func=per_users, columns=list(_HISTORY)),
        rows=BUCKET_EVENTS,
        keep=True,
    )
    summary = engine.summarise(
        done, {"rows": ("count", "*"), "positives": ("sum", "label")}, by=["split"]
    )
    found = {r["split"]: r for r in summary.iter_rows(named=True)}
    out: dict[str, Any] = {}
    rows: dict[str, int] = {}
    positives: dict[str, int] = {}
    for name in SPLITS:
        rows[name] = int(found.get(name, {}).get("rows") or 0)
        positives[name] = int(found.get(name, {}).get("positives") or 0)
        if rows[name] == 0:
            raise DataError(
                f"the {name} window has no (user, item) pair with an event in the lookback "
                "before any prediction time",
                fix="lengthen params.features.lookback",
            )
        out[name] = engine.map_batches(done, partial(_of_split, name=name), keep=True)
        log.info("%s: %d rows, %d positive", name, rows[name], positives[name])
    cols = feature_columns(wins)
    return Out(
        values={f"{s}_features": out[s] for s in SPLITS},
        facts={
            "features": cols,
            "n_features": len(cols),
            "horizon_days": p.features.horizon.total_seconds() / 86400,
            "lookback_days": p.features.lookback.total_seconds() / 86400,
            "every_hours": p.features.every.total_seconds() / 3600,
            "rows": rows,
            "positives": positives,
            "base_rate": {s: positives[s] / rows[s] for s in SPLITS},
        },
        metrics={f"rows_{s}": float(rows[s]) for s in SPLITS},
    )
