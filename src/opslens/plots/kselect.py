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
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(ks, [c["silhouette"] for c in curve], "o-", color="#3182bd", label="silhouette")
    ax.set_xlabel("K (number of clusters)")
    ax.set_ylabel("silhouette", color="#3182bd")
    ax.set_xticks(ks)
    ax2 = ax.twinx()
    ax2.plot(
        ks,
        [c["calinski_harabasz"] for c in curve],
        "s--",
        color="#e6550d",
        label="Calinski-Harabasz",
    )
    ax2.set_ylabel("Calinski-Harabasz", color="#e6550d")
    ax.axvline(chosen_k, color="black", lw=1.2, ls=":")
    ax.set_title(f"Choosing K: K={chosen_k} chosen")
    return fig
