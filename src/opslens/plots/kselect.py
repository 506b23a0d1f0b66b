"""The K-selection figure shared by every recipe that chooses a number of clusters.

Built without pyplot (no global state); the caller saves it.

Example:
    >>> curve = [{"k": 2, "silhouette": 0.5, "calinski_harabasz": 80.0}]
    >>> type(plot_k_curve(curve, 2)).__name__
    'Figure'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from opslens.plots import theme

__all__ = ["plot_k_curve"]


def plot_k_curve(curve: Sequence[Mapping[str, float]], chosen_k: int) -> Figure:
    """Silhouette and Calinski-Harabasz index against K, the chosen K marked.

    Example:
        >>> curve = [{"k": 2, "silhouette": 0.5, "calinski_harabasz": 80.0},
        ...          {"k": 3, "silhouette": 0.7, "calinski_harabasz": 120.0}]
        >>> plot_k_curve(curve, 3).axes[0].get_xlabel()
        'K (number of clusters)'
    """
    ks = [int(c["k"]) for c in curve]
    fig, ax = theme.new_figure(6.5, 3.8)
    ax.plot(ks, [c["silhouette"] for c in curve], "o-", color=theme.PRIMARY, label="silhouette")
    ax.set_xticks(ks)
    ax.axvline(chosen_k, color=theme.REFERENCE, lw=1.2, ls=":")
    theme.style_axes(
        ax,
        title=f"Choosing K: K={chosen_k} chosen",
        xlabel="K (number of clusters)",
        ylabel="silhouette",
        grid="y",
    )
    ax.yaxis.label.set_color(theme.PRIMARY)
    ax2 = ax.twinx()
    ax2.plot(
        ks,
        [c["calinski_harabasz"] for c in curve],
        "s--",
        color=theme.SECONDARY,
        label="Calinski-Harabasz",
    )
    # the twin keeps its right spine: it carries the second scale
    ax2.set_ylabel("Calinski-Harabasz", color=theme.SECONDARY, fontsize=theme.LABEL_SIZE)
    ax2.tick_params(labelsize=theme.TICK_SIZE)
    ax2.spines["top"].set_visible(False)
    return fig
