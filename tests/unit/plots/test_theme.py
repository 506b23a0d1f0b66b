"""Every opslens figure follows the theme: labels and titles, theme colours only, no pyplot.

Each plot function of the plot modules is drawn from small synthetic inputs and
checked: a matplotlib Figure not managed by pyplot; every visible axes that
shows data has an x label, a y label (shared-x panels and twins may take the x
label of their sibling) and a title (its own, a twin's or the figure's
suptitle), readable ticks and no top spine; every line, patch, collection and
text colour is in the theme's palette, a grey/white/black neutral or
transparent, and images and colour-mapped collections use the theme's
sequential colormap. A test below proves the checks catch a figure off the theme.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np
import polars as pl
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgba, to_rgba_array
from matplotlib.figure import Figure

from opslens.features.decompose import decompose_series
from opslens.plots import theme

MODULES = [
    "opslens.plots.series",
    "opslens.plots.kselect",
    "opslens.recipes.distribution.plots",
    "opslens.recipes.fleet.plots",
]
PALETTE = {to_hex(c) for c in theme.PALETTE}
MIN_TICK_SIZE = 7.0


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


# -- inputs --------------------------------------------------------------------


def _series() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    v = rng.normal(size=120)
    v[[10, 60, 100]] = [6.0, -7.0, 8.0]
    return pl.DataFrame({"t": np.arange(120.0), "v": v})


def _decomposition() -> object:
    t = np.arange(96.0)
    frame = pl.DataFrame({"t": t, "v": np.sin(2 * np.pi * t / 24) + 0.01 * t})
    return decompose_series(frame, time="t", value="v", period=24)


def _profiles() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cluster": [0, 1],
            "n_combinations": [3, 2],
            "n_rows": [90, 60],
            "mean_histogram": [[0.1, 0.6, 0.3, 0.0], [0.0, 0.2, 0.3, 0.5]],
            "median": [1.4, 2.6],
            "hdr_50": [[[1.0, 1.8]], [[2.2, 3.4]]],
            "hdr_90": [[[0.3, 2.6]], [[1.2, 3.9]]],
        }
    )


EDGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0])


def _trips() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    n = 200
    return pl.DataFrame(
        {
            "duration_min": rng.gamma(3.0, 5.0, n),
            "route": rng.choice(["A", "B", "C"], n),
            "hour_band": rng.choice(["night", "peak", "day"], n),
            "vehicle_type": rng.choice(["bus", "tram"], n),
        }
    )


def _embedding(n_groups: int) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(-1, n_groups), 5)
    pcs = rng.normal(size=(labels.size, 2)) + labels[:, None] * 3.0
    rare = np.zeros(labels.size, dtype=bool)
    rare[:3] = True
    frame = pl.DataFrame(
        {"id": [f"d{i}" for i in range(labels.size)], "pc1": pcs[:, 0], "pc2": pcs[:, 1]}
    )
    return frame, labels, rare


def _scores(with_rare: bool) -> pl.DataFrame:
    n = 12
    frame = pl.DataFrame(
        {"device": [f"pump {i}" for i in range(n)], "combined": np.linspace(0.05, 0.99, n)}
    )
    return frame.with_columns(is_rare=pl.col("combined") > 0.8) if with_rare else frame


_ENRICHMENT = pl.DataFrame(
    {
        "group": [-1, 0, 1, 2],
        "n_devices": [5, 20, 100, 40],
        "n_failed": [1, 8, 2, 1],
        "failure_rate": [0.2, 0.4, 0.02, 0.025],
        "enriched": [False, True, False, False],
    }
)
_CURVE = [
    {"k": 2, "silhouette": 0.41, "calinski_harabasz": 80.0},
    {"k": 3, "silhouette": 0.62, "calinski_harabasz": 120.0},
    {"k": 4, "silhouette": 0.55, "calinski_harabasz": 110.0},
]


def _cases() -> Iterator[tuple[str, Callable[[], Figure]]]:
    """(module:function/variant, a call that draws it) for every plot function."""
    series = _module("opslens.plots.series")
    kselect = _module("opslens.plots.kselect")
    dist = _module("opslens.recipes.distribution.plots")
    fleet = _module("opslens.recipes.fleet.plots")
    frame = _series()
    spikes = frame["v"].abs() > 5
    three = {"zscore": spikes, "robust_z": frame["v"] > 5, "iqr": frame["v"] < -5}
    row = _profiles().row(1, named=True)
    emb, labels, rare = _embedding(3)
    many, many_labels, many_rare = _embedding(9)
    yield (
        "series:plot_point_anomalies/one",
        lambda: series.plot_point_anomalies(frame, time="t", value="v", flags=spikes, title="v"),
    )
    yield (
        "series:plot_point_anomalies/three",
        lambda: series.plot_point_anomalies(frame, time="t", value="v", flags=three, title="v"),
    )
    yield (
        "series:plot_decomposition",
        lambda: series.plot_decomposition(_decomposition(), title="pump 7"),
    )
    yield "kselect:plot_k_curve", lambda: kselect.plot_k_curve(_CURVE, 3)
    yield (
        "distribution:plot_initial_distributions",
        lambda: dist.plot_initial_distributions(
            _trips(), target="duration_min", categorical=["route", "hour_band", "vehicle_type"]
        ),
    )
    yield (
        "distribution:plot_cluster_profiles",
        lambda: dist.plot_cluster_profiles(_profiles(), EDGES),
    )
    yield (
        "distribution:plot_confusion_matrix",
        lambda: dist.plot_confusion_matrix([[5, 1, 0], [0, 4, 0], [0, 0, 3]], [0, 1, 2]),
    )
    pred = {
        "edges": list(EDGES),
        "probabilities": list(row["mean_histogram"]),
        "hdr_50": [[1.2, 1.8]],
        "hdr_90": [[0.5, 2.0]],
    }
    answer = {"cluster": 1, "prediction": pred, "unknown": ["route"]}
    yield (
        "distribution:plot_instance/value",
        lambda: dist.plot_instance(
            2.9, answer, [0.2, 0.8], [0, 1], title="trip 7", attributes={"route": "R9"}, unit="min"
        ),
    )
    yield (
        "distribution:plot_instance/none",
        lambda: dist.plot_instance(None, answer, [0.2, 0.8], [0, 1], title="trip 8"),
    )
    score = {"log_score": -2.0, "crps": 1.0, "coverage_50": 0.5, "coverage_90": 0.9}
    yield (
        "distribution:plot_scores",
        lambda: dist.plot_scores(
            {
                "blended": score,
                "own_histogram": score,
                "global_histogram": score,
                "coverages": [50, 90],
            }
        ),
    )
    yield (
        "distribution:plot_k_scores",
        lambda: dist.plot_k_scores(
            [
                {**c, "log_score": -2.0 + 0.1 * i, "log_score_se": 0.05}
                for i, c in enumerate(_CURVE)
            ],
            3,
        ),
    )
    yield (
        "fleet:plot_embedding",
        lambda: fleet.plot_embedding(emb, labels, rare, explained_variance=(0.5, 0.2)),
    )
    yield (
        "fleet:plot_embedding/many_groups",
        lambda: fleet.plot_embedding(many, many_labels, many_rare),
    )
    yield (
        "fleet:plot_rare_scores",
        lambda: fleet.plot_rare_scores(_scores(True), top_n=10, entity="device"),
    )
    yield "fleet:plot_rare_scores/no_is_rare", lambda: fleet.plot_rare_scores(_scores(False))
    yield "fleet:plot_group_failure_rates", lambda: fleet.plot_group_failure_rates(_ENRICHMENT)
    yield (
        "fleet:plot_k_distance",
        lambda: fleet.plot_k_distance(np.linspace(0.1, 2.0, 30) ** 2, eps=0.8, min_samples=5),
    )


CASES = dict(_cases())


# -- checks --------------------------------------------------------------------


def _allowed(rgba: tuple[float, float, float, float]) -> bool:
    r, g, b, a = rgba
    return a == 0 or (r == g == b) or to_hex((r, g, b)) in PALETTE


def _colours(ax: Axes) -> Iterator[tuple[str, tuple[float, float, float, float]]]:
    for line in ax.lines:
        for what, c in (
            ("line", line.get_color()),
            ("marker face", line.get_markerfacecolor()),
            ("marker edge", line.get_markeredgecolor()),
        ):
            if not (isinstance(c, str) and c.lower() == "none"):
                yield f"{what} {line.get_label()!r}", to_rgba(c)
    for patch in ax.patches:
        yield f"{type(patch).__name__} face", to_rgba(patch.get_facecolor())
        yield f"{type(patch).__name__} edge", to_rgba(patch.get_edgecolor())
    for coll in ax.collections:
        if coll.get_array() is not None:  # colour-mapped: checked by _colormaps
            continue
        for what, cs in (("face", coll.get_facecolor()), ("edge", coll.get_edgecolor())):
            for c in to_rgba_array(cs):
                yield f"{type(coll).__name__} {coll.get_label()!r} {what}", tuple(c)  # type: ignore[misc]
    for text in ax.texts:
        yield f"text {text.get_text()!r}", to_rgba(text.get_color())


def _colormaps(ax: Axes) -> Iterator[tuple[str, str]]:
    for image in ax.images:
        yield "image", image.get_cmap().name
    for coll in ax.collections:
        if coll.get_array() is not None:
            yield type(coll).__name__, coll.get_cmap().name


def _shows_data(ax: Axes) -> bool:
    return bool(ax.lines or ax.patches or ax.collections or ax.images)


def _is_colorbar(ax: Axes) -> bool:
    return ax.get_label() == "<colorbar>"


def theme_problems(fig: object) -> list[str]:
    """Everything about ``fig`` that is off the theme (empty when it follows it)."""
    if not isinstance(fig, Figure):
        return [f"not a matplotlib Figure: {type(fig).__name__}"]
    problems = []
    if fig.canvas.manager is not None:
        problems.append("the figure is managed by pyplot")
    suptitle = fig.get_suptitle()
    shown = [ax for ax in fig.axes if ax.get_visible() and _shows_data(ax)]
    if not shown:
        problems.append("no axes shows data")
    for n, ax in enumerate(shown):
        where = f"axes {n} ({ax.get_title() or ax.get_ylabel() or 'untitled'})"
        for what, rgba in _colours(ax):
            if not _allowed(rgba):
                colour = to_hex(rgba[:3])
                problems.append(f"{where}: {what} is {colour}, not a theme colour")
        for what, name in _colormaps(ax):
            if name != theme.SEQUENTIAL_CMAP:
                problems.append(f"{where}: {what} colormap {name}, not {theme.SEQUENTIAL_CMAP}")
        if _is_colorbar(ax):
            if not (ax.get_ylabel() or ax.get_xlabel()):
                problems.append(f"{where}: colorbar without a label")
            continue
        siblings = ax.get_shared_x_axes().get_siblings(ax)
        if not any(s.get_xlabel() for s in siblings):
            problems.append(f"{where}: no x label")
        if not ax.get_ylabel():
            problems.append(f"{where}: no y label")
        twins = [s for s in siblings if s.get_position().bounds == ax.get_position().bounds]
        titles = [s.get_title(loc) for s in twins for loc in ("center", "left", "right")]
        if not (suptitle or any(titles)):
            problems.append(f"{where}: no title (axes or suptitle)")
        if ax.spines["top"].get_visible():
            problems.append(f"{where}: top spine shown (not styled by the theme)")
        small = [
            t.get_text()
            for t in ax.get_xticklabels() + ax.get_yticklabels()
            if t.get_text() and t.get_fontsize() < MIN_TICK_SIZE
        ]
        if small:
            problems.append(f"{where}: tick labels under {MIN_TICK_SIZE} pt: {small[:3]}")
    return list(dict.fromkeys(problems))  # each problem once, in order


# -- tests ---------------------------------------------------------------------


def test_every_plot_function_has_a_case() -> None:
    covered = {key.split("/")[0] for key in CASES}
    for name in MODULES:
        module = _module(name)
        short = name.split(".")[-1] if name.startswith("opslens.plots") else name.split(".")[-2]
        for fn in module.__all__:
            if fn.startswith("plot_"):
                assert f"{short}:{fn}" in covered, f"{name}.{fn} has no case in this test"


@pytest.mark.parametrize("case", sorted(CASES))
def test_figure_follows_the_theme(case: str) -> None:
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - pyplot needs a backend
        plt = None
    before = plt.get_fignums() if plt is not None else []
    fig = CASES[case]()
    fig.canvas.draw()  # layout and tick labels as they are saved
    assert theme_problems(fig) == []
    if plt is not None:
        assert plt.get_fignums() == before, "a pyplot figure was created"


def test_the_checks_catch_a_figure_off_the_theme() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 2], color="red")
    ax.bar([0, 1], [1, 2], color="tab:green")
    problems = theme_problems(fig)
    assert any("#ff0000" in p for p in problems), problems
    assert any("#2ca02c" in p for p in problems), problems
    assert any("no x label" in p for p in problems)
    assert any("no title" in p for p in problems)
    assert any("top spine" in p for p in problems)
    other = Figure()
    other.add_subplot().imshow(np.eye(2), cmap="jet")
    assert any("colormap jet" in p for p in theme_problems(other))


def test_a_role_drawn_off_the_palette_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real plot functions go through the theme: a role set to red shows up as a problem."""
    monkeypatch.setattr(theme, "PRIMARY", "red")
    fig = CASES["fleet:plot_k_distance"]()
    assert any("#ff0000" in p for p in theme_problems(fig))


def test_theme_figure_changes_no_global_state() -> None:
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    fig, axes = theme.new_figure(4, 3, rows=2, sharex=True)
    for ax in axes:
        ax.plot([0, 1], [0, 1], color=theme.PRIMARY, label="line")
        theme.style_axes(ax, title="t", xlabel="x", ylabel="y")
    theme.add_legend(axes[0])
    assert isinstance(fig, Figure) and fig.get_layout_engine() is not None
    assert dict(mpl.rcParams) == before
    assert axes[0].title.get_fontsize() == theme.TITLE_SIZE
    assert not axes[1].spines["right"].get_visible()
    assert len(set(theme.PALETTE)) == 9 and set(theme.CATEGORICAL) <= set(theme.PALETTE)
