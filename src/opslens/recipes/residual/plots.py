"""Figures of the residual recipe, one per axis: the fit and the residuals.

Example:
    >>> import numpy as np
    >>> from opslens.recipes.residual.trend import AxisTrend
    >>> t = np.arange(20.0); y = 2 * t
    >>> fig = plot_fit(t, y, AxisTrend().fit(t, y), axis="axis1", family="linear", train_end_s=15.0)
    >>> [len(a.collections) for a in fig.axes], type(plot_residuals(t, y * 0, axis="axis1")).__name__
    ([1], 'Figure')
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from opslens.plots import theme
from opslens.recipes.residual.trend import AxisTrend

__all__ = ["plot_fit", "plot_residuals"]


def plot_fit(
    t: np.ndarray, y: np.ndarray, model: AxisTrend, *, axis: str, family: str, train_end_s: float
) -> Figure:
    """The axis's values as a scatter and the fitted trend as a line in another colour."""
    fig, ax = theme.new_figure(7, 3.2)
    ax.scatter(t, y, s=6, color=theme.PRIMARY, alpha=0.6, label="data", linewidths=0)
    grid = np.linspace(float(t.min()), float(t.max()), 400) if t.size else np.array([])
    ax.plot(grid, model.predict(grid), color=theme.SECONDARY, linewidth=2, label=f"{family} fit")
    ax.axvline(
        train_end_s, color=theme.REFERENCE, linewidth=0.8, linestyle=":", label="end of training"
    )
    theme.style_axes(ax, title=f"{axis}: {family} trend", xlabel="time_s (s)", ylabel=axis)
    theme.add_legend(ax, loc="best")
    return fig


def plot_residuals(t: np.ndarray, residual: np.ndarray, *, axis: str) -> Figure:
    """Residuals as a scatter only, with a dashed zero line in another colour."""
    fig, ax = theme.new_figure(7, 3.0)
    ax.scatter(t, residual, s=6, color=theme.PRIMARY, alpha=0.6, linewidths=0)
    ax.axhline(0.0, color=theme.ALERT, linestyle="--", linewidth=1.2)
    theme.style_axes(ax, title=f"{axis}: residuals", xlabel="time_s (s)", ylabel="residual")
    return fig
