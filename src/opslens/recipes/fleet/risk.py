"""Failure risk: population rarity, own-history change and peer-relative change in one ranking.

Each component is turned into its rank percentile over the ranked devices (0 = the
most ordinary, 1 = the most extreme) and the risk is their weighted mean (equal
weights unless given):

``rarity``       the rare stage's combined score of the whole-history fingerprint
``own_change``   the largest |level shift| of a metric's recent window against the
                 device's own baseline, in robust units
``peer_change``  the largest, over metrics, of the peer-relative |level shift| and the
                 peer-relative CUSUM over the warning threshold ``h``

Metrics with a sensor fault are left out from the fault's first day on (their change
is the sensor's, not the machine's), and so is the rarity of a device with a sensor
fault (its fingerprint carries the fault). The explanation names the metric whose
peer-relative change is largest, in the metric's own unit: direction, size, since when
and how fast it moves.

Example:
    >>> from datetime import date
    >>> change = pl.DataFrame({"d": ["a", "a", "b", "b"], "metric": ["t"] * 4,
    ...     "series": ["own", "peer"] * 2, "level_z": [0.5, 0.4, 4.0, 6.0],
    ...     "trend_z": [0.0] * 4, "spread": [1.0] * 4, "cusum": [0.0, 0.0, 0.0, 30.0],
    ...     "shift": [0.3, 0.2, 5.0, 6.1], "slope": [0.0, 0.0, 0.2, 0.31],
    ...     "since": [None, None, None, date(2024, 3, 12)], "last": [date(2024, 4, 1)] * 4})
    >>> r = risk_ranking(change, None, entity="d", h=10.0, units={"t": "°C"})
    >>> r["d"].to_list(), r["explanation"][0]
    (['b', 'a'], "t has run 6.1 °C above its usual level against its peers' median since 12 March 2024, rising 0.31 °C a day")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from scipy.stats import rankdata

__all__ = ["COMPONENTS", "explain_change", "percentile", "risk_ranking"]

COMPONENTS = ("rarity", "own_change", "peer_change")


def percentile(values: np.ndarray) -> np.ndarray:
    """Rank percentile in (0, 1]; missing values stay missing."""
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    if ok.any():
        out[ok] = rankdata(values[ok]) / ok.sum()
    return out


def _number(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1 else f"{x:.1f}" if abs(x) < 100 else f"{x:,.0f}"


def explain_change(
    metric: str,
    shift: float | None,
    slope: float | None,
    since: object,
    unit: str | None,
) -> str:
    """One sentence in the metric's words: direction, size in its unit, since when, how fast.

    Example:
        >>> from datetime import date
        >>> explain_change("power_kw", -240.0, None, date(2024, 5, 2), "kW")
        "power_kw has run 240 kW below its usual level against its peers' median since 2 May 2024"
    """
    u = f" {unit}" if unit else ""
    if shift is None or not np.isfinite(shift):
        return f"{metric} has too few recent readings to say how it moved"
    side = "above" if shift >= 0 else "below"
    text = f"{metric} has run {_number(abs(shift))}{u} {side} its usual level against its peers' median"
    if since is not None and hasattr(since, "strftime"):
        text += f" since {since.day} {since.strftime('%B %Y')}"  # type: ignore[attr-defined]
    if slope is not None and np.isfinite(slope) and abs(slope) > 0:
        way = "rising" if slope > 0 else "falling"
        text += f", {way} {_number(abs(slope))}{u} a day"
    return text


def risk_ranking(
    change: pl.DataFrame,
    rarity: pl.DataFrame | None,
    *,
    entity: str,
    h: float,
    faulty: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    units: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """One row per device, riskiest first: the components, ``risk``, ``rank`` and an explanation.

    ``change`` is :func:`~opslens.recipes.fleet.change.change_table`'s frame (faulty
    metrics already masked); ``rarity`` has the entity and a ``score`` column.
    """
    w = {c: 1.0 for c in COMPONENTS} | dict(weights or {})
    own = (
        change.filter(pl.col("series") == "own")
        .group_by(entity)
        .agg(pl.col("level_z").abs().max().alias("own_change"))
    )
    peer = change.filter(pl.col("series") == "peer").with_columns(
        pl.max_horizontal(pl.col("level_z").abs(), pl.col("cusum") / h).alias("__score")
    )
    top = (
        peer.sort([entity, "__score"], descending=[False, True], nulls_last=True)
        .group_by(entity, maintain_order=True)
        .first()
        .rename({"__score": "peer_change"})
    )
    frame = top.join(own, on=entity, how="left")
    if rarity is not None:
        frame = frame.join(
            rarity.select(entity, pl.col("score").alias("rarity")), on=entity, how="left"
        )
        frame = frame.with_columns(
            pl.when(pl.col(entity).is_in(list(faulty)))
            .then(None)
            .otherwise(pl.col("rarity"))
            .alias("rarity")
        )
    else:
        frame = frame.with_columns(pl.lit(None, pl.Float64).alias("rarity"))
    parts = {
        c: percentile(frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()) for c in COMPONENTS
    }
    weight = {c: np.where(np.isfinite(p), w[c], 0.0) for c, p in parts.items()}
    total = sum(weight.values())
    risk = sum(np.nan_to_num(parts[c]) * weight[c] for c in COMPONENTS) / np.where(
        total > 0, total, 1.0
    )
    unit = dict(units or {})
    explanation = [
        explain_change(m, s, sl, since, unit.get(m))
        for m, s, sl, since in frame.select("metric", "shift", "slope", "since").iter_rows()
    ]
    return (
        frame.select(
            entity,
            "rarity",
            "own_change",
            "peer_change",
            pl.Series("risk", np.where(total > 0, risk, np.nan)),
            pl.col("metric").alias("top_metric"),
            pl.col("shift").alias("top_shift"),
            pl.col("slope").alias("top_slope"),
            pl.col("since").alias("top_since"),
            pl.Series("explanation", explanation, dtype=pl.String),
            pl.col(entity).is_in(list(faulty)).alias("sensor_fault"),
        )
        .with_columns(pl.col("risk").fill_nan(None))
        .sort(["risk", entity], descending=[True, False], nulls_last=True)
        .with_row_index("rank", offset=1)
        .with_columns(pl.col("rank").cast(pl.Int64))
    )
