"""Figures of the fleet recipe: embedding, rare-device scores, failure rates, k-distance.

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot (no global state); the caller saves it.

Example:
    >>> import numpy as np
    >>> fig = plot_k_distance(np.linspace(0.1, 2.0, 30), eps=0.8)
    >>> fig.axes[0].get_title()
    'k-distance curve (DBSCAN eps = 0.8)'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from opslens.plots import theme

__all__ = ["plot_embedding", "plot_group_failure_rates", "plot_k_distance", "plot_rare_scores"]


def plot_embedding(
    embedding: pl.DataFrame,
    labels: Sequence[int] | np.ndarray,
    rare: Sequence[bool] | np.ndarray,
    *,
    title: str = "Devices in the first two principal components",
    explained_variance: tuple[float, float] | None = None,
    failed: Sequence[bool] | np.ndarray | None = None,
) -> Figure:
    """PCA scatter coloured by group (noise grey), rare devices ringed, known failures crossed.

    Beyond the theme's seven group colours, markers change so groups stay apart.

    Example:
        >>> emb = pl.DataFrame({"id": list("abcd"), "pc1": [0.0, 1.0, 5.0, 6.0],
        ...                     "pc2": [0.0, 1.0, 5.0, 6.0]})
        >>> fig = plot_embedding(emb, [0, 0, 1, -1], [False, False, False, True],
        ...                      failed=[False, True, False, False])
        >>> sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts())
        ['group 0', 'group 1', 'known failure', 'noise (fits no group)', 'rare device']
    """
    lab = np.asarray(labels).astype(int)
    is_rare = np.asarray(rare, dtype=bool)
    x, y = embedding["pc1"].to_numpy(), embedding["pc2"].to_numpy()
    fig, ax = theme.new_figure(7.5, 5.5)
    n_colors, markers = len(theme.CATEGORICAL), ("o", "s", "^", "D", "v")
    for i, g in enumerate(np.unique(lab)):
        sel = lab == g
        color = theme.NEUTRAL if g < 0 else theme.CATEGORICAL[i % n_colors]
        ax.scatter(
            x[sel],
            y[sel],
            s=18,
            color=color,
            marker="o" if g < 0 else markers[(i // n_colors) % len(markers)],
            alpha=0.8,
            label="noise (fits no group)" if g < 0 else f"group {g}",
        )
    if is_rare.any():
        ax.scatter(
            x[is_rare],
            y[is_rare],
            s=80,
            facecolors="none",
            edgecolors=theme.REFERENCE,
            linewidths=1.4,
            label="rare device",
        )
    is_failed = np.zeros(lab.size, dtype=bool) if failed is None else np.asarray(failed, bool)
    if is_failed.any():
        ax.scatter(
            x[is_failed],
            y[is_failed],
            s=40,
            marker="x",
            color=theme.ALERT,
            linewidths=1.4,
            zorder=4,
            label="known failure",
        )
    if explained_variance is not None:
        xlabel = f"PC1 ({100 * explained_variance[0]:.0f}% of variance)"
        ylabel = f"PC2 ({100 * explained_variance[1]:.0f}% of variance)"
    else:
        xlabel, ylabel = "PC1", "PC2"
    theme.style_axes(ax, title=title, xlabel=xlabel, ylabel=ylabel)
    theme.add_legend(ax, loc="best")
    return fig


def plot_rare_scores(
    scores: pl.DataFrame,
    *,
    top_n: int = 20,
    entity: str | None = None,
    failed: set[str] | None = None,
    contamination: float | None = None,
) -> Figure:
    """Horizontal bars of the combined rare-device score of the ``top_n`` devices.

    ``entity`` defaults to the first column; rare devices are drawn in the alert colour
    (every bar is, without an ``is_rare`` column), the others grey. Devices in
    ``failed`` get a ✕ beside their bar and "(failed)" after their id; the legend
    says the rare flag is the quota ``contamination``.

    Example:
        >>> s = pl.DataFrame({"id": list("abc"), "combined": [0.2, 0.9, 0.5],
        ...                   "is_rare": [False, True, False]})
        >>> fig = plot_rare_scores(s, top_n=2, failed={"b"})
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['c', 'b (failed)']
    """
    ent = entity or scores.columns[0]
    top = scores.sort("combined", descending=True).head(top_n).reverse()
    has_rare = "is_rare" in top.columns
    colors = (
        [theme.ALERT if r else theme.NEUTRAL for r in top["is_rare"].to_list()]
        if has_rare
        else [theme.ALERT] * top.height
    )
    fig, ax = theme.new_figure(7, max(2.5, 0.3 * top.height + 1.2))
    pos = np.arange(top.height)
    values = top["combined"].to_numpy()
    ax.barh(pos, values, color=colors)
    ids = [str(v) for v in top[ent].to_list()]
    hit = np.array([i in (failed or set()) for i in ids], dtype=bool)
    ax.set_yticks(pos, [f"{i} (failed)" if h else i for i, h in zip(ids, hit, strict=True)])
    ax.set_xlim(0, 1.05)
    theme.style_axes(
        ax,
        title=f"The {top.height} most unusual devices",
        xlabel="combined score (mean rank percentile of the detectors; 1 = most unusual)",
        ylabel=ent,
        grid="x",
    )
    handles: list[Artist] = []
    if has_rare:
        quota = (
            f"rare: the top {100 * contamination:.3g}% by score (params.rare.contamination)"
            if contamination is not None
            else "rare"
        )
        handles += [
            Patch(color=theme.ALERT, label=quota),
            Patch(color=theme.NEUTRAL, label="not rare"),
        ]
    if hit.any():
        handles.append(
            ax.scatter(
                values[hit] + 0.025,
                pos[hit],
                marker="x",
                color=theme.REFERENCE,
                label="known failure",
            )
        )
    if handles:
        theme.add_legend(ax, handles=handles, loc="lower right")
    return fig


def plot_group_failure_rates(enrichment: pl.DataFrame, *, method: str | None = None) -> Figure:
    """Bars of failure rate per group with the fleet rate as a line; enriched groups in the alert colour.

    ``method`` names the grouping in the title (the one holding the most enriched group).

    Example:
        >>> e = pl.DataFrame({"group": [0, 1], "n_devices": [20, 100], "n_failed": [8, 2],
        ...                   "failure_rate": [0.4, 0.02], "enriched": [True, False]})
        >>> len(plot_group_failure_rates(e).axes[0].patches)
        2
    """
    n_dev = int(enrichment["n_devices"].sum())
    fleet = float(enrichment["n_failed"].sum()) / n_dev if n_dev else 0.0
    fig, ax = theme.new_figure(7, 4)
    groups = [("fits no group" if g < 0 else f"group {g}") for g in enrichment["group"].to_list()]
    colors = [theme.ALERT if e else theme.PRIMARY for e in enrichment["enriched"].to_list()]
    pos = np.arange(enrichment.height)
    ax.bar(pos, enrichment["failure_rate"].to_numpy(), color=colors)
    rows = enrichment.select("n_failed", "n_devices", "failure_rate").iter_rows()
    for p, (nf, nd, rate) in zip(pos, rows, strict=True):
        ax.annotate(
            f"{nf}/{nd}",
            (p, rate),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=theme.LEGEND_SIZE,
        )
    fleet_line = ax.axhline(
        fleet,
        color=theme.REFERENCE,
        linestyle="--",
        linewidth=1,
        label=f"fleet rate {100 * fleet:.3g}%",
    )
    ax.set_xticks(pos, groups)
    theme.style_axes(
        ax,
        title="Known failures per behaviour group" + (f" ({method})" if method else ""),
        xlabel="behaviour group",
        ylabel="share of devices that failed",
        grid="y",
    )
    handles = [
        Patch(color=theme.ALERT, label="enriched (Fisher test, BH-corrected)"),
        Patch(color=theme.PRIMARY, label="not enriched"),
        fleet_line,
    ]
    theme.add_legend(ax, handles=handles)
    return fig


def plot_k_distance(distances: np.ndarray, eps: float, *, min_samples: int | None = None) -> Figure:
    """The sorted k-distance curve with the chosen DBSCAN eps marked.

    Example:
        >>> import numpy as np
        >>> len(plot_k_distance(np.arange(10.0), eps=4.0).axes[0].lines)
        2
    """
    d = np.sort(np.asarray(distances, dtype=float))
    fig, ax = theme.new_figure(6.5, 4)
    ax.plot(np.arange(d.size), d, color=theme.PRIMARY)
    ax.axhline(eps, color=theme.REFERENCE, linestyle="--", linewidth=1)
    k = f"{min_samples}-" if min_samples else "k-"
    theme.style_axes(
        ax,
        title=f"k-distance curve (DBSCAN eps = {eps:.3g})",
        xlabel="devices, sorted by k-distance",
        ylabel=f"distance to the {k}th nearest neighbour",
    )
    return fig
