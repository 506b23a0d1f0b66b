"""Figures for one series: the series with its flagged points, and an STL decomposition.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot
(no global state); the caller saves or shows it.

Example:
    >>> import numpy as np, polars as pl
    >>> frame = pl.DataFrame({"t": np.arange(50.0), "v": np.r_[np.zeros(49), 9.0]})
    >>> fig = plot_point_anomalies(frame, time="t", value="v", flags=frame["v"] > 5, title="v")
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from opslens.errors import DataError
from opslens.features.decompose import Decomposition
from opslens.plots import theme

__all__ = ["plot_decomposition", "plot_point_anomalies"]


def plot_point_anomalies(
    frame: pl.DataFrame,
    *,
    time: str,
    value: str,
    flags: pl.Series | np.ndarray | Mapping[str, pl.Series | np.ndarray],
    title: str,
    unit: str | None = None,
    event: Any = None,
    event_label: str = "event",
    events: Sequence[tuple[Any, str]] = (),
) -> Figure:
    """Plot ``value`` over ``time`` as a line with the flagged points marked.

    ``flags`` is one boolean per row of ``frame`` (e.g. ``point_anomalies(...)["is_anomaly"]``),
    or a mapping method → flags to mark several detectors' points with their own markers.
    ``unit`` labels the value axis; ``event`` (a time, e.g. a known failure) is drawn
    as a dashed vertical line labelled ``event_label``; ``events`` (``(time, kind)``
    pairs, e.g. repairs and error codes) as dotted lines, one colour and one legend entry
    per kind. Date axes get readable ticks.

    Example:
        >>> import numpy as np, polars as pl
        >>> frame = pl.DataFrame({"t": [0, 1, 2], "v": [1.0, 8.0, 1.0]})
        >>> fig = plot_point_anomalies(frame, time="t", value="v", flags=np.array([False, True, False]), title="x")
        >>> fig.axes[0].get_title()
        'x'
    """
    for name in (time, value):
        if name not in frame.columns:
            raise DataError(
                f"column {name!r} is not in the table (columns: {', '.join(frame.columns)})",
                fix="name an existing column",
            )
    sets = dict(flags) if isinstance(flags, Mapping) else {"flagged": flags}
    masks = {}
    for label, f in sets.items():
        mask = np.asarray(f.to_numpy() if isinstance(f, pl.Series) else f, dtype=bool)
        if mask.shape != (frame.height,):
            raise DataError(
                f"flags has {mask.size} entries for {frame.height} rows",
                fix="pass one flag per row of the frame",
            )
        masks[label] = mask
    order = np.argsort(frame[time].to_numpy(), kind="stable")
    t = frame[time].to_numpy()[order]
    v = frame[value].cast(pl.Float64).to_numpy()[order]

    fig, ax = theme.new_figure(10, 3.5)
    ax.plot(t, v, color=theme.PRIMARY, linewidth=0.8, label=value)
    styles = [(theme.ALERT, "o", 18), (theme.SECONDARY, "x", 30), (theme.PURPLE, "^", 22)]
    for (label, mask), (color, marker, size) in zip(masks.items(), styles * 3, strict=False):
        hit = mask[order]
        ax.scatter(
            t[hit],
            v[hit],
            color=color,
            marker=marker,
            s=size,
            zorder=3,
            label=f"{label} ({int(hit.sum())})",
        )
    _event(ax, event, event_label)
    _kinds(ax, events)
    theme.style_axes(ax, title=title, xlabel=time, ylabel=theme.with_unit(value, unit))
    theme.date_axis(ax, t)
    theme.add_legend(ax, loc="upper left")
    return fig


def _event(ax: Any, event: Any, label: str) -> None:
    """A dashed vertical line at ``event`` (skipped when None)."""
    if event is not None:
        ax.axvline(event, color=theme.REFERENCE, linestyle="--", linewidth=1.2, label=label)


def _kinds(ax: Any, events: Sequence[tuple[Any, str]], *, legend: bool = True) -> None:
    """Dotted vertical lines at each ``(time, kind)``; one colour and legend entry per kind."""
    colours = (theme.GREEN, theme.PURPLE, theme.SKY, theme.YELLOW, theme.ORANGE)
    kinds = sorted({str(k) for _, k in events})
    for i, kind in enumerate(kinds):
        times = [t for t, k in events if str(k) == kind]
        for j, t in enumerate(times):
            ax.axvline(
                t,
                color=colours[i % len(colours)],
                linestyle=":",
                linewidth=1.4,
                label=f"{kind} ({len(times)})" if legend and j == 0 else None,
            )


def plot_decomposition(
    decomposition: Decomposition,
    *,
    title: str,
    unit: str | None = None,
    event: Any = None,
    event_label: str = "known failure",
    events: Sequence[tuple[Any, str]] = (),
) -> Figure:
    """Plot observed, trend, seasonal and residual components in four stacked panels.

    ``unit`` goes on the observed panel's label; ``event`` is a dashed line on every panel,
    ``events`` (``(time, kind)`` pairs) dotted lines, one colour per kind.

    Example:
        >>> import numpy as np, polars as pl
        >>> from opslens.features.decompose import decompose_series
        >>> t = np.arange(96.0)
        >>> d = decompose_series(pl.DataFrame({"t": t, "v": np.sin(2 * np.pi * t / 24)}), time="t", value="v", period=24)
        >>> [ax.get_ylabel() for ax in plot_decomposition(d, title="v").axes]
        ['observed', 'trend', 'seasonal', 'resid']
    """
    frame = decomposition.frame
    t = frame["time"].to_numpy()
    fig, axes = theme.new_figure(10, 7, rows=4, sharex=True)
    for ax, part in zip(axes, ("observed", "trend", "seasonal", "resid"), strict=True):
        y = frame[part].to_numpy()
        if part == "resid":
            ax.scatter(t, y, s=3, color=theme.SECONDARY)
            ax.axhline(0.0, color=theme.NEUTRAL, linewidth=0.6)
        else:
            ax.plot(t, y, linewidth=0.8, color=theme.PRIMARY)
        _event(ax, event, event_label)
        _kinds(ax, events, legend=ax is axes[0])
        # shared x: the time label once, under the bottom panel
        label = theme.with_unit(part, unit) if part == "observed" else part
        theme.style_axes(ax, ylabel=label, xlabel="time" if ax is axes[-1] else None)
    theme.date_axis(axes[-1], t)
    if event is not None or len(events):
        theme.add_legend(axes[0], loc="upper left")
    fig.suptitle(
        f"{title} — period {decomposition.period} ({decomposition.period_source}); "
        f"trend strength {decomposition.trend_strength:.2f}, "
        f"seasonal strength {decomposition.seasonal_strength:.2f}",
        fontsize=theme.SUPTITLE_SIZE,
    )
    return fig
