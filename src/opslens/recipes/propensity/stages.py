"""Stages of the propensity recipe; each a pure function ``(ctx, **inputs) -> Out``.

``data-gen``    the events (generated: ``generator: clickstream``, or yours) → events, items,
                users; unknown event types warned, counted and dropped; the funnel
``sessionize``  session ids, start, end, duration and counts (gap > ``params.sessions.gap``)
``split``       70/15/15 by date; a session crossing a boundary is cut there (see below)
``features``    candidate (user, item, prediction time) rows, point-in-time features and labels
                (:mod:`.featurize`)
``train``       logistic regression and XGBoost; the better on validation PR-AUC is the model;
                it and the baselines (logistic, base rate, best single-feature rule) on test
                (:mod:`.training`)

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

import polars as pl

from opslens.core.recipe import Out, StageContext
from opslens.errors import DataError, OpslensWarning
from opslens.features.events import sessionize
from opslens.recipes.propensity import plots
from opslens.recipes.propensity.featurize import SPLITS, split_out
from opslens.recipes.propensity.params import PropensityParams
from opslens.recipes.propensity.point_in_time import EVENT_KINDS
from opslens.recipes.propensity.prepare import canonical_events, event_columns
from opslens.recipes.propensity.prepare import item_table as build_items
from opslens.recipes.propensity.prepare import user_table as build_users

__all__ = ["data_gen", "sessionize_stage", "split", "split_bounds"]

log = logging.getLogger("opslens.propensity")


def data_gen(
    ctx: StageContext,
    raw: pl.DataFrame,
    item_table: pl.DataFrame | None,
    user_table: pl.DataFrame | None,
) -> Out:
    """Validated events, the item catalog and the users; the funnel of the events."""
    if ctx.engine.distributed:  # the events stay on the engine (.kept)
        from opslens.recipes.propensity.kept import data_gen_kept

        return data_gen_kept(ctx, raw, item_table, user_table)
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
    items = build_items(
        events, raw, item_table, cols, p.items.id_column, p.items.path, p.items.columns
    )
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
    if ctx.engine.distributed:  # Spark: window functions, the sessions left on the executors
        from opslens.recipes.propensity.kept import sessionize_kept

        return sessionize_kept(ctx, events)
    p: PropensityParams = ctx.params
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


def _time_ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame.sort("timestamp", "user_id", maintain_order=True)`` one column at a time: each
    column is released once gathered, so the peak is the frame plus a column, not two frames.

    Example:
        >>> f = pl.DataFrame({"timestamp": [2, 1, 1], "user_id": ["a", "b", "a"], "x": [0, 1, 2]})
        >>> _time_ordered(f)["x"].to_list()
        [2, 1, 0]
    """
    order = frame.select(pl.arg_sort_by("timestamp", "user_id", maintain_order=True)).to_series()
    columns = {}
    for name in frame.columns:
        columns[name] = frame.get_column(name).gather(order)
        frame = frame.drop(name)
    return pl.DataFrame(columns)


def split(ctx: StageContext, sessionized_events: pl.DataFrame) -> Out:
    """Train/validation/test events by date; sessions cut at the boundaries."""
    if ctx.engine.distributed:
        from opslens.recipes.propensity.kept import split_kept

        return split_kept(ctx, sessionized_events)
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
    # a session has events in two splits exactly when a boundary falls in (start, end]:
    # counted on the sessions' first events, not by grouping 10^7 events by their session id
    firsts = ev.filter(pl.col("session_event") == 1)
    crossing = firsts.filter(
        pl.any_horizontal(
            (pl.col("session_start") < b) & (pl.col("session_end") >= b) for b in bounds[1:3]
        )
    ).height
    del firsts
    # sessions again within each split (the cut), one split at a time: each split's events,
    # as a subsequence of the sessionized events, are still sorted by user and time
    plain = ev.drop(c for c in ev.columns if c.startswith("session"))
    inside = {
        "train": pl.col("timestamp") < bounds[1],
        "val": (pl.col("timestamp") >= bounds[1]) & (pl.col("timestamp") < bounds[2]),
        "test": pl.col("timestamp") >= bounds[2],
    }
    parts = {}
    for s in SPLITS:  # (no name holds the cut frame: _time_ordered frees it column by column)
        parts[s] = _time_ordered(
            sessionize(
                plain.filter(inside[s]).with_columns(split=pl.lit(s)),
                gap=p.sessions.gap,
                by=["user_id", "split"],
            )
        )
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
    return split_out(parts, table, crossing)
