"""The item popularity of propensity's point-in-time features: everyone's views and
purchases of the item in ``(t - w, t)``.

It depends only on the item's events, so it is computed once per distinct (item,
prediction time) (:func:`item_popularity`, a small table with a handful of prediction
times) and looked up for any rows (:func:`with_popularity`); :func:`item_features` is
the two in one.

Example:
    >>> from datetime import datetime
    >>> ev = pl.DataFrame({"item_id": ["x", "x", "y"], "event_type": ["view", "purchase", "view"],
    ...     "timestamp": [datetime(2024, 1, 1, h) for h in (1, 2, 3)]})
    >>> pts = pl.DataFrame({"item_id": ["x"], "prediction_time": [datetime(2024, 1, 1, 3)]})
    >>> item_popularity(pts, ev, windows=[timedelta(days=1)]).row(0)[2:]
    (1, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import polars as pl

from opslens.recipes.propensity._past import (
    KEYS,
    WINDOWS,
    counts_between,
    item_columns,
    micros,
    prediction_rows,
    text_codes,
    window_label,
)

__all__ = ["item_features", "item_popularity", "with_popularity"]


def item_popularity(
    points: pl.DataFrame,
    events: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = WINDOWS,
) -> pl.DataFrame:
    """``item_views_<w>`` and ``item_purchases_<w>`` of each distinct (item_id,
    prediction_time) in ``points``: the item's views and purchases by anyone in ``(t - w, t)``.

    One row per distinct point (sorted by prediction time and item): with a handful of
    prediction times it is small, so it can be computed once and joined to any rows.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"item_id": ["x", "x"], "event_type": ["view", "view"],
        ...     "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 3)]})
        >>> pts = pl.DataFrame({"item_id": ["x", "x"],
        ...     "prediction_time": [datetime(2024, 1, 2), datetime(2024, 1, 4)]})
        >>> # on Jan 4 the view of Jan 1 is exactly 3 days old: outside the 3-day window
        >>> item_popularity(pts, ev, windows=[timedelta(days=3)])["item_views_3d"].to_list()
        [1, 1]
    """
    wins = list(windows)
    pts = (
        points.select("item_id", pl.col("prediction_time").cast(pl.Datetime("us")))
        .unique()
        .sort("prediction_time", "item_id")
    )
    pts, ev = text_codes(
        [pts, events.select("item_id", "event_type", "timestamp")], "item_id", "_item"
    )
    q_key = pts["_item"].fill_null(-1).to_numpy()
    q_t = pts["prediction_time"].to_physical().to_numpy()
    found = q_key >= 0
    counts: dict[str, np.ndarray] = {}
    for kind, name in (("view", "item_views"), ("purchase", "item_purchases")):
        sub = ev.select("_item", "timestamp", "event_type").filter(
            (pl.col("event_type") == kind) & pl.col("_item").is_not_null()
        )
        key = sub["_item"].to_numpy()
        t = sub["timestamp"].cast(pl.Datetime("us")).to_physical().to_numpy()
        del sub
        for w in wins:
            n = counts_between(key, t, np.maximum(q_key, 0), q_t, micros(w))
            counts[f"{name}_{window_label(w)}"] = np.where(found, n, 0)
    return pts.select("item_id", "prediction_time").with_columns(
        pl.Series(k, v) for k, v in counts.items()
    )


def item_features(
    rows: pl.DataFrame,
    events: pl.DataFrame,
    *,
    windows: Sequence[timedelta] = WINDOWS,
) -> pl.DataFrame:
    """The item popularity of each row: ``item_views_<w>`` and ``item_purchases_<w>``, the
    item's views and purchases by anyone in ``(t - w, t)``.

    They depend only on the item's events: run on the rows and events of any subset of
    items it gives exactly those items' rows of the whole. Computed once per distinct
    (item, prediction time) (:func:`item_popularity`), so the cost hardly grows with the
    rows. Columns: the keys and the counts; sorted by prediction time, user and item.

    Example:
        >>> from datetime import datetime
        >>> ev = pl.DataFrame({"user_id": ["a", "b", "b"], "item_id": ["x", "x", "y"],
        ...     "event_type": ["view", "purchase", "view"],
        ...     "timestamp": [datetime(2024, 1, 1, h) for h in (1, 2, 3)]})
        >>> rows = pl.DataFrame({"user_id": ["c", "c"], "item_id": ["x", "y"],
        ...     "prediction_time": [datetime(2024, 1, 1, 3)] * 2})
        >>> f = item_features(rows, ev, windows=[timedelta(days=1)])
        >>> f["item_views_1d"].to_list(), f["item_purchases_1d"].to_list()
        ([1, 0], [1, 0])
    """
    keys = prediction_rows(rows).sort("prediction_time", "user_id", "item_id")
    return with_popularity(keys, item_popularity(keys, events, windows=windows), windows)


def with_popularity(
    rows: pl.DataFrame, popularity: pl.DataFrame, windows: Sequence[timedelta] = WINDOWS
) -> pl.DataFrame:
    """The keys of ``rows`` (in their order) and their item popularity, looked up in a table of
    :func:`item_popularity` (a point missing from it counts 0).

    Example:
        >>> from datetime import datetime
        >>> t = datetime(2024, 1, 2)
        >>> pop = pl.DataFrame({"item_id": ["x"], "prediction_time": [t], "item_views_1d": [4],
        ...     "item_purchases_1d": [1]})
        >>> rows = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "prediction_time": [t, t]})
        >>> with_popularity(rows, pop, [timedelta(days=1)])["item_views_1d"].to_list()
        [4, 0]
    """
    cols = item_columns(windows)
    on = ["item_id", "prediction_time"]
    return (
        rows.select(KEYS)
        .join(popularity.select(*on, *cols), on=on, how="left", maintain_order="left")
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in cols)
    )
