"""Figures of the segments recipe (matplotlib ``Figure``, no pyplot).

Example:
    >>> import numpy as np
    >>> fig = plot_segments(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1]),
    ...     np.array(["hdbscan", "knn"]), ("a", "b"))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from opslens.plots.theme import CATEGORICAL, add_legend, new_figure, style_axes

__all__ = ["plot_rmse_comparison", "plot_segment_rmse", "plot_segments"]


def plot_segments(
    xy: np.ndarray, segments: np.ndarray, paths: np.ndarray, names: Sequence[str]
) -> Figure:
    """Training points on two features, coloured by segment; kNN-assigned noise as crosses."""
    fig, ax = new_figure(6.5, 4.5)
    for s in np.unique(segments):
        for path, marker in (("hdbscan", "o"), ("knn", "x")):
            rows = (segments == s) & (paths == path)
            if rows.any():
                ax.scatter(
                    xy[rows, 0],
                    xy[rows, 1],
                    s=8 if path == "hdbscan" else 18,
                    marker=marker,
                    color=CATEGORICAL[int(s) % len(CATEGORICAL)],
                    label=f"segment {s}" if path == "hdbscan" else None,
                )
    style_axes(
        ax, title="Segments (x: noise points placed by kNN)", xlabel=names[0], ylabel=names[1]
    )
    add_legend(ax)
    return fig


def plot_rmse_comparison(rmse: Mapping[str, Mapping[str, float]]) -> Figure:
    """Held-out RMSE per target: per-segment models against one global model."""
    fig, ax = new_figure(6, 3.5)
    targets = list(rmse)
    x = np.arange(len(targets))
    for i, (key, label) in enumerate(
        (("segment", "per-segment models"), ("global", "global model"))
    ):
        ax.bar(
            x + (i - 0.5) * 0.38,
            [rmse[t][key] for t in targets],
            0.38,
            label=label,
            color=CATEGORICAL[i],
        )
    ax.set_xticks(x, targets)
    style_axes(ax, title="Per-segment models against one global model", ylabel="held-out RMSE")
    add_legend(ax)
    return fig


def plot_segment_rmse(targets: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Held-out RMSE per segment and target: the segment's own model against the global one."""
    fig, axes = new_figure(4.2 * len(targets), 3.5, cols=len(targets), squeeze=False)
    for ax, (target, t) in zip(axes[0], targets.items(), strict=True):
        segments = list(t["per_segment"])
        x = np.arange(len(segments))
        for i, key in enumerate(("segment", "global")):
            ax.bar(
                x + (i - 0.5) * 0.38,
                [t["per_segment"][s][key]["rmse"] for s in segments],
                0.38,
                label=f"{key} model",
                color=CATEGORICAL[i],
            )
        ax.set_xticks(x, segments)
        style_axes(ax, title=target, xlabel="segment", ylabel="held-out RMSE")
        add_legend(ax)
    return fig
