"""Figures of the distribution recipe; each function returns a matplotlib Figure.

No pyplot and no global state: figures are built with
:class:`matplotlib.figure.Figure`, so they are safe in threads and servers; the
caller saves them (``fig.savefig(path)``).

Densities are drawn as probability over bin width, so unequal (quantile) bins
are shown honestly. HDR bands: 90% light, 50% darker.

Example:
    >>> fig = plot_confusion_matrix([[5, 1], [0, 4]], [0, 1])
    >>> type(fig).__name__
    'Figure'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_cluster_profiles",
    "plot_confusion_matrix",
    "plot_initial_distributions",
    "plot_instance",
]

_HDR_STYLE = {"hdr_90": ("#9ecae1", 0.35, "90% HDR"), "hdr_50": ("#3182bd", 0.35, "50% HDR")}


def _density(hist: Sequence[float], edges: np.ndarray) -> np.ndarray:
    p = np.asarray(hist, dtype=float)
    return p / np.diff(edges)


def _draw_profile(ax: Axes, row: Mapping[str, Any], edges: np.ndarray) -> None:
    """Bars of a profile's mean histogram (as density) with its HDRs shaded."""
    e = np.asarray(edges, dtype=float)
    ax.bar(
        e[:-1],
        _density(row["mean_histogram"], e),
        width=np.diff(e),
        align="edge",
        color="#bdbdbd",
        edgecolor="white",
        linewidth=0.5,
    )
    for key in ("hdr_90", "hdr_50"):
        color, alpha, label = _HDR_STYLE[key]
        for i, (lo, hi) in enumerate(row.get(key) or []):
            ax.axvspan(lo, hi, color=color, alpha=alpha, label=label if i == 0 else None, lw=0)
    if row.get("median") is not None:
        ax.axvline(float(row["median"]), color="#636363", ls=":", lw=1, label="median")
    ax.set_ylabel("density")


def plot_initial_distributions(
    frame: pl.DataFrame, *, target: str, categorical: Sequence[str], max_levels: int = 20
) -> Figure:
    """Histogram of the target and row counts per level of each categorical column.

    Example:
        >>> df = pl.DataFrame({"y": [1.0, 2.0, 2.5, 9.0], "route": ["A", "A", "B", "C"]})
        >>> len(plot_initial_distributions(df, target="y", categorical=["route"]).axes)
        2
    """
    n = 1 + len(categorical)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    values = frame[target].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    axes[0].hist(values, bins=50, color="#6baed6")
    axes[0].set_title(f"{target} (n={values.size:,})")
    axes[0].set_ylabel("rows")
    for ax, col in zip(axes[1:], categorical, strict=False):
        counts = (
            frame.group_by(pl.col(col).cast(pl.String).fill_null("null"))
            .len("n")
            .sort(["n", col], descending=[True, False])
        )
        shown = counts.head(max_levels)
        ax.bar(shown[col].to_list(), shown["n"].to_list(), color="#74c476")
        more = f", top {max_levels} of {counts.height}" if counts.height > max_levels else ""
        ax.set_title(f"{col}{more}")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


def plot_cluster_profiles(profiles: pl.DataFrame, edges: np.ndarray) -> Figure:
    """One panel per cluster: its mean histogram with the 50% and 90% HDRs shaded.

    Example:
        >>> prof = pl.DataFrame({"cluster": [0], "n_combinations": [3], "n_rows": [90],
        ...     "mean_histogram": [[0.5, 0.5]], "median": [1.0], "hdr_50": [[[0.5, 1.5]]],
        ...     "hdr_90": [[[0.1, 1.9]]]})
        >>> len(plot_cluster_profiles(prof, np.array([0.0, 1.0, 2.0])).axes)
        1
    """
    n = profiles.height
    fig = Figure(figsize=(7.5, 2.4 * max(n, 1) + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(n, 1), 1, sharex=True)).ravel()
    for ax, row in zip(axes, profiles.iter_rows(named=True), strict=False):
        _draw_profile(ax, row, edges)
        combos = row.get("n_combinations")
        about = f"{combos} combinations, " if combos is not None else ""
        ax.set_title(
            f"Cluster {row['cluster']} ({about}{row.get('n_rows', 0):,} rows)", fontsize=10
        )
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("value")
    return fig


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[Any]
) -> Figure:
    """Held-out confusion matrix with counts written in each cell.

    Example:
        >>> plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b", "c"]).axes[0].get_ylabel()
        'true cluster'
    """
    m = np.asarray(matrix)
    fig = Figure(figsize=(1.2 * len(classes) + 2.5, 1.1 * len(classes) + 1.8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    labels = [str(c) for c in classes]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted cluster")
    ax.set_ylabel("true cluster")
    top = m.max() if m.size else 0
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v}", ha="center", va="center", color="white" if v > top / 2 else "black")
    ax.set_title("Confusion matrix (held-out rows)")
    return fig


def plot_instance(
    value: float | None,
    profile_row: Mapping[str, Any],
    edges: np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    classes: Sequence[Any],
    *,
    title: str,
) -> Figure:
    """An instance's value against its predicted cluster's distribution, and every cluster's probability.

    Example:
        >>> row = {"cluster": 1, "mean_histogram": [0.2, 0.8], "hdr_50": [[1.2, 1.8]], "hdr_90": [[0.5, 2.0]]}
        >>> fig = plot_instance(1.5, row, np.array([0.0, 1.0, 2.0]), [0.1, 0.9], [0, 1], title="trip 7")
        >>> [ax.get_title() for ax in fig.axes]
        ['trip 7: value 1.5 vs cluster 1', 'cluster probabilities']
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax, bars = fig.subplots(1, 2, width_ratios=[2.2, 1])
    _draw_profile(ax, profile_row, np.asarray(edges, dtype=float))
    if value is not None and np.isfinite(value):
        ax.axvline(float(value), color="#d62728", lw=2, label=f"instance ({value:.3g})")
        ax.set_title(f"{title}: value {value:.3g} vs cluster {profile_row['cluster']}")
    else:
        ax.set_title(f"{title}: no value, cluster {profile_row['cluster']}")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("value")
    p = np.asarray(probabilities, dtype=float)
    labels = [str(c) for c in classes]
    colors = ["#d62728" if str(c) == str(profile_row["cluster"]) else "#9ecae1" for c in classes]
    bars.bar(labels, p, color=colors)
    bars.set_ylim(0, 1)
    for i, v in enumerate(p):
        bars.text(i, min(v + 0.02, 0.95), f"{v:.2f}", ha="center", fontsize=9)
    bars.set_xlabel("cluster")
    bars.set_ylabel("probability")
    bars.set_title("cluster probabilities")
    return fig
