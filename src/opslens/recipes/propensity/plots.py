"""Figures of the propensity recipe: funnel, calibration, precision-recall, feature importance.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot.

Example:
    >>> f = pl.DataFrame({"event_type": ["view", "purchase"], "events": [100, 2], "users": [10, 2]})
    >>> plot_funnel(f).axes[0].get_title()
    'Funnel: users reaching each step'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from opslens.plots import theme

__all__ = ["plot_calibration", "plot_funnel", "plot_importance", "plot_pr_curves"]


def plot_funnel(funnel: pl.DataFrame) -> Figure:
    """Horizontal bars of users reaching each event type, with the share of viewers.

    Example:
        >>> f = pl.DataFrame({"event_type": ["view"], "events": [5], "users": [3]})
        >>> len(plot_funnel(f).axes[0].patches)
        1
    """
    fig, ax = theme.new_figure(7, 3.5)
    users = funnel["users"].to_numpy()
    labels = funnel["event_type"].to_list()
    y = np.arange(len(labels))[::-1]
    ax.barh(y, users, color=theme.PRIMARY)
    top = max(int(users[0]), 1) if len(users) else 1
    for yi, u, e in zip(y, users, funnel["events"].to_list(), strict=True):
        ax.text(
            u, yi, f"  {u:,} users ({100 * u / top:.1f}%), {e:,} events", va="center", fontsize=8
        )
    ax.set_yticks(y, labels)
    ax.set_xlim(0, top * 1.6)
    theme.style_axes(ax, title="Funnel: users reaching each step", xlabel="users", grid="x")
    return fig


def plot_calibration(table: pl.DataFrame, model: str) -> Figure:
    """Observed purchase rate against mean predicted probability (test split), diagonal for reference.

    Example:
        >>> t = pl.DataFrame({"mean_predicted": [0.1, 0.5], "observed_rate": [0.05, 0.4]})
        >>> plot_calibration(t, "xgboost").axes[0].get_xlabel()
        'mean predicted probability'
    """
    fig, ax = theme.new_figure(5.5, 5)
    x, yv = table["mean_predicted"].to_numpy(), table["observed_rate"].to_numpy()
    top = float(max(x.max(initial=0.01), yv.max(initial=0.01)))
    ax.plot(
        [0, top],
        [0, top],
        color=theme.REFERENCE,
        linestyle="--",
        linewidth=1,
        label="perfectly calibrated",
    )
    ax.plot(x, yv, marker="o", color=theme.PRIMARY, label=model)
    theme.style_axes(
        ax,
        title=f"Calibration on the test split ({model})",
        xlabel="mean predicted probability",
        ylabel="observed purchase rate",
    )
    theme.add_legend(ax, loc="upper left")
    return fig


def plot_pr_curves(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    """Precision-recall curves of each model on the test split, and the base rate.

    Example:
        >>> y = np.array([0, 1, 0, 1]); fig = plot_pr_curves(y, {"m": np.array([0.1, 0.9, 0.2, 0.6])})
        >>> len(fig.axes[0].lines)
        2
    """
    fig, ax = theme.new_figure(6, 5)
    for i, (name, s) in enumerate(scores.items()):
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, color=theme.CATEGORICAL[i % len(theme.CATEGORICAL)], label=name)
    ax.axhline(float(np.mean(y)), color=theme.NEUTRAL, linestyle="--", label="base rate")
    theme.style_axes(
        ax, title="Precision-recall on the test split", xlabel="recall", ylabel="precision"
    )
    theme.add_legend(ax, loc="upper right")
    return fig


def plot_importance(importance: Sequence[tuple[str, float]]) -> Figure:
    """Horizontal bars of XGBoost's share of total gain per feature.

    Example:
        >>> len(plot_importance([("a", 0.7), ("b", 0.3)]).axes[0].patches)
        2
    """
    fig, ax = theme.new_figure(7, 0.3 * len(importance) + 1.5)
    names = [n for n, _ in importance][::-1]
    values = [v for _, v in importance][::-1]
    ax.barh(np.arange(len(names)), values, color=theme.PRIMARY)
    ax.set_yticks(np.arange(len(names)), names)
    theme.style_axes(
        ax,
        title="What the model relies on (share of XGBoost gain)",
        xlabel="share of gain",
        grid="x",
    )
    return fig
