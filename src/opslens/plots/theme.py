"""The one look of every opslens figure: a colour-blind-safe palette, roles, sizes, axes style.

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies) plus one neutral grey for context; plot code names a *role*
(``PRIMARY``, ``ALERT``, ...) rather than a colour. Figures are built with
:class:`matplotlib.figure.Figure` (no pyplot) and sizes are set per figure and
per axes, never in the global ``rcParams``.

Example:
    >>> fig, ax = new_figure(6, 3)
    >>> _ = ax.plot([0, 1, 2], [1.0, 3.0, 2.0], color=PRIMARY)
    >>> style_axes(ax, title="Load", xlabel="time", ylabel="load (kW)")
    >>> ax.get_title(), ax.get_ylabel(), ax.spines["top"].get_visible()
    ('Load', 'load (kW)', False)
"""

from __future__ import annotations

from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "ALERT",
    "BLACK",
    "BLUE",
    "CATEGORICAL",
    "GREEN",
    "GREY",
    "HIGHLIGHT_BAND",
    "HIGHLIGHT_BAND_INNER",
    "LABEL_SIZE",
    "LEGEND_SIZE",
    "NEUTRAL",
    "ORANGE",
    "PALETTE",
    "PRIMARY",
    "PURPLE",
    "REFERENCE",
    "SECONDARY",
    "SEQUENTIAL_CMAP",
    "SKY",
    "SUPTITLE_SIZE",
    "TICK_SIZE",
    "TITLE_SIZE",
    "VERMILLION",
    "YELLOW",
    "add_legend",
    "date_axis",
    "new_figure",
    "style_axes",
    "with_unit",
]

BLUE, ORANGE, GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
PURPLE, SKY, YELLOW, BLACK = "#CC79A7", "#56B4E9", "#F0E442", "#000000"
GREY = "#999999"
#: Every colour a figure may use (the Okabe–Ito eight and the neutral grey).
PALETTE = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK, GREY)

PRIMARY = BLUE  # the data itself
SECONDARY = ORANGE  # a second quantity or the instance being explained
ALERT = VERMILLION  # anomalies, rare devices, failures, enriched groups
NEUTRAL = GREY  # context: noise, background histograms, unremarkable bars
REFERENCE = BLACK  # reference lines and markers: chosen K, fleet rate, median
HIGHLIGHT_BAND = SKY  # shaded bands (the wide, 90% HDR)
HIGHLIGHT_BAND_INNER = BLUE  # the narrow band drawn over it (50% HDR)
#: Groups and clusters, in order (black is kept for reference marks).
CATEGORICAL = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION, YELLOW)
#: Heat maps and other sequential scales: perceptually uniform and colour-blind safe.
SEQUENTIAL_CMAP = "cividis"

SUPTITLE_SIZE, TITLE_SIZE, LABEL_SIZE, TICK_SIZE, LEGEND_SIZE = 12.0, 11.0, 10.0, 9.0, 8.0
_GRID = "#E5E5E5"


def new_figure(
    width: float, height: float, *, rows: int = 1, cols: int = 1, **kw: Any
) -> tuple[Figure, Any]:
    """A constrained-layout Figure of ``width`` x ``height`` inches and its axes.

    ``kw`` goes to :meth:`Figure.subplots` (``sharex``, ``width_ratios``, ...);
    the axes come back as it returns them (one Axes, or an array).
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, **kw)


def style_axes(
    ax: Axes,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    grid: Literal["both", "x", "y"] | None = "both",
) -> None:
    """Title, labels, readable ticks and a light grid on ``ax``; top and right spines removed.

    ``None`` leaves a title or label as it is; ``grid`` names the axes that get grid lines.
    """
    if title is not None:
        ax.set_title(title, fontsize=TITLE_SIZE)
    else:
        ax.title.set_fontsize(TITLE_SIZE)
    for text, setter, current in (
        (xlabel, ax.set_xlabel, ax.xaxis.label),
        (ylabel, ax.set_ylabel, ax.yaxis.label),
    ):
        if text is not None:
            setter(text, fontsize=LABEL_SIZE)
        else:
            current.set_fontsize(LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(False)
    if grid is not None:
        ax.grid(True, axis=grid, color=_GRID, linewidth=0.6)
        ax.set_axisbelow(True)


def add_legend(ax: Axes, **kw: Any) -> None:
    """A frameless legend in the theme's legend size (``kw`` goes to :meth:`Axes.legend`)."""
    ax.legend(**{"frameon": False, "fontsize": LEGEND_SIZE, **kw})


def date_axis(ax: Axes, values: Any) -> None:
    """Readable date ticks (matplotlib's concise date format) when ``values`` are datetimes.

    Example:
        >>> import numpy as np
        >>> fig, ax = new_figure(4, 3)
        >>> t = np.arange("2026-01-01", "2026-02-01", dtype="datetime64[D]")
        >>> _ = ax.plot(t, np.arange(t.size))
        >>> date_axis(ax, t)
        >>> type(ax.xaxis.get_major_formatter()).__name__
        'ConciseDateFormatter'
    """
    import numpy as np
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if np.issubdtype(np.asarray(values).dtype, np.datetime64):
        locator = AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def with_unit(label: str, unit: str | None) -> str:
    """``temperature (°C)``, or the label alone without a unit.

    Example:
        >>> with_unit("temperature", "°C"), with_unit("load", None)
        ('temperature (°C)', 'load')
    """
    return f"{label} ({unit})" if unit else label
