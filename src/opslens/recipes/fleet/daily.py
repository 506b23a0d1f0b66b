"""The fleet as daily matrices: one row per device, one column per day, per metric.

Degradation and sensor faults show over days, so the change and sensor-health
checks work on each device's daily mean (sub-daily readings are averaged within
the calendar day; daily data passes through). The peer-relative series is a
device's daily value minus the same-day median of its peer group
(``columns.peer_group``: site, model, firmware), which removes the weather, load
and season the group shares. A peer group of one device is compared with the
whole fleet instead (with a warning).

Example:
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2024, 1, 1) + timedelta(days=d) for d in range(3)]
    >>> r = pl.DataFrame({"d": ["a"] * 3 + ["b"] * 3, "t": t + t,
    ...     "v": [1.0, 2.0, 3.0, 3.0, 4.0, 5.0]})
    >>> panel = daily_panel(r, entity="d", time="t", metrics=["v"])
    >>> panel.values["v"].shape, panel.relative["v"][0].tolist()
    ((2, 3), [-1.0, -1.0, -1.0])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from opslens.core.engine import Engine, LocalEngine
from opslens.errors import OpslensWarning

__all__ = ["DailyPanel", "daily_panel", "peer_median"]


@dataclass(frozen=True)
class DailyPanel:
    """Daily means per device (rows) and day (columns), per metric, and their peer-relative form.

    ``peers``: each device's peer-group code (0 for all when there is no peer column);
    ``relative[m]`` = ``values[m]`` − the same-day median of the device's peer group;
    ``peer_level[m]`` that median, one row per device (its group's).
    """

    devices: np.ndarray
    days: np.ndarray
    peers: np.ndarray
    peer_names: list[str]
    values: dict[str, np.ndarray]
    relative: dict[str, np.ndarray]
    peer_level: dict[str, np.ndarray]
    lonely: list[str]

    def row(self, device: str) -> int:
        """The row of ``device``."""
        return int(np.flatnonzero(self.devices == device)[0])


def peer_median(values: np.ndarray, peers: np.ndarray) -> np.ndarray:
    """Per day, the median of each peer group's devices (NaN-aware), one row per device.

    Example:
        >>> peer_median(np.array([[1.0], [3.0], [10.0]]), np.array([0, 0, 1])).ravel().tolist()
        [2.0, 2.0, 10.0]
    """
    out = np.full_like(values, np.nan)
    for code in np.unique(peers):
        rows = peers == code
        block = values[rows]
        seen = np.isfinite(block).any(axis=0)
        med = np.full(values.shape[1], np.nan)
        if seen.any():
            med[seen] = np.nanmedian(block[:, seen], axis=0)
        out[rows] = med
    return out


def _day_means(
    part: pl.DataFrame, *, entity: str, time: str, metrics: list[str], peer: str | None
) -> pl.DataFrame:
    """Each device's daily mean per metric (rows sorted by device and time: the order the
    local readings have, so the sums add up alike)."""
    keys = [entity] if peer is None else [entity, peer]
    day = pl.col(time).dt.truncate("1d").cast(pl.Date).alias("__day")
    return (
        part.sort(entity, time)
        .select(*keys, day, *metrics)
        .with_columns(pl.col(metrics).cast(pl.Float64).fill_nan(None))
        .group_by([*keys, "__day"])
        .agg(pl.col(metrics).mean())
    )


def _first_peer(part: pl.DataFrame, *, entity: str, time: str, peer: str) -> pl.DataFrame:
    """Each device's peer value at its first reading."""
    return part.sort(entity, time).select(entity, peer).unique(entity, keep="first")


def daily_panel(
    readings: Any,
    *,
    entity: str,
    time: str,
    metrics: list[str],
    peer: str | None = None,
    rows_per_chunk: int | None = 1_000_000,
    engine: Engine | None = None,
) -> DailyPanel:
    """Daily matrices of ``readings`` (device × day per metric) with their peer-relative form.

    The daily means are taken ``rows_per_chunk`` rows of whole devices at a time (a
    device's rows never split), so memory follows the chunk, not the fleet; ``None``
    takes the whole table at once. The panel is the same either way. On a distributed
    ``engine`` the readings stay there: the daily means (devices × days rows) and each
    device's first peer value are made by it, and only they come here.
    """
    day = pl.col(time).dt.truncate("1d").cast(pl.Date).alias("__day")
    keys = [entity] if peer is None else [entity, peer]
    firsts: list[pl.DataFrame] = []

    def means(part: pl.DataFrame) -> pl.DataFrame:
        if peer is not None:  # each device's first peer value, in the table's row order
            firsts.append(part.select(entity, peer).unique(entity, keep="first"))
        return (
            part.select(*keys, day, *metrics)
            .with_columns(pl.col(metrics).cast(pl.Float64).fill_nan(None))
            .group_by([*keys, "__day"])
            .agg(pl.col(metrics).mean())
        )

    if engine is not None and engine.distributed:
        shape: dict[str, Any] = {"entity": entity, "time": time}
        daily = engine.per_group(
            readings, entity, partial(_day_means, **shape, metrics=metrics, peer=peer)
        )
        if peer is not None:
            firsts.append(
                engine.per_group(readings, entity, partial(_first_peer, **shape, peer=peer))
            )
    elif rows_per_chunk is None:
        daily = means(readings)
    else:
        daily = LocalEngine(rows_per_slice=rows_per_chunk).per_group(readings, entity, means)
    devices = daily[entity].unique().sort()
    stamps = daily["__day"].to_numpy().astype("datetime64[D]")
    days = np.arange(stamps.min(), stamps.max() + 1)
    row = daily.join(devices.to_frame().with_row_index("__row"), on=entity)["__row"].to_numpy()
    col = (stamps - days[0]).astype(np.int64)
    values: dict[str, np.ndarray] = {}
    for m in metrics:
        mat = np.full((devices.len(), days.size), np.nan)
        mat[row, col] = daily[m].fill_null(np.nan).to_numpy()
        values[m] = mat
    del daily
    peers = np.zeros(devices.len(), dtype=np.int64)
    names = ["fleet"]
    lonely: list[str] = []
    if peer is not None:
        per_device = (
            (pl.concat(firsts).unique(entity, keep="first").sort(entity))[peer]
            .cast(pl.String)
            .fill_null("(none)")
        )
        codes = (
            per_device.to_frame()
            .with_columns(pl.col(peer).rank("dense").cast(pl.Int64) - 1)[peer]
            .to_numpy()
        )
        names = sorted(per_device.unique().to_list())
        sizes = np.bincount(codes, minlength=len(names))
        lonely_rows = np.flatnonzero(sizes[codes] < 2)
        lonely = devices.gather(lonely_rows).to_list()
        if lonely:
            warnings.warn(
                f"{len(lonely)} device(s) are alone in their peer group (columns.peer_group "
                f"'{peer}'), e.g. {lonely[0]}: each is compared with the whole fleet instead",
                OpslensWarning,
                stacklevel=2,
            )
        peers = codes
    level: dict[str, np.ndarray] = {}
    relative: dict[str, np.ndarray] = {}
    for m in metrics:
        med = peer_median(values[m], peers)
        if lonely:
            fleet = peer_median(values[m], np.zeros_like(peers))
            rows = np.isin(devices.to_numpy(), lonely)
            med[rows] = fleet[rows]
        level[m] = med
        relative[m] = values[m] - med
    return DailyPanel(
        devices=devices.to_numpy(),
        days=days,
        peers=peers,
        peer_names=names,
        values=values,
        relative=relative,
        peer_level=level,
        lonely=lonely,
    )
