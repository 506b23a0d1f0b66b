"""The distribution analysis chained from its pure parts on planted synthetic trips.

combination_labels -> drop_small_combinations -> bin_edges -> quantize ->
combination_histograms -> DistributionClusterer -> cluster_profiles ->
PatternClassifier -> classification_metrics, and the plots on the results.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import adjusted_rand_score

from opslens.cluster.profiles import DistributionClusterer, cluster_profiles, describe_profile
from opslens.features.histograms import (
    bin_edges,
    combination_histograms,
    combination_labels,
    drop_small_combinations,
    quantize,
)
from opslens.models.classifier import PatternClassifier
from opslens.models.metrics import classification_metrics
from opslens.plots.kselect import plot_k_curve
from opslens.recipes.distribution.plots import (
    plot_cluster_profiles,
    plot_confusion_matrix,
    plot_initial_distributions,
    plot_instance,
)
from opslens.synthetic.trips import make_trips

CATS = ["route", "hour_band", "vehicle_type"]
TARGET = "duration_min"


@dataclass
class Chain:
    rows: pl.DataFrame
    truth: pl.DataFrame
    dropped_rows: int
    dropped_combinations: int
    edges: np.ndarray
    combinations: list[str]
    clusterer: DistributionClusterer
    profiles: pl.DataFrame
    model: PatternClassifier
    test: pl.DataFrame


@pytest.fixture(scope="module")
def chain() -> Chain:
    data = make_trips(n_rows=60_000, seed=0)
    frame = combination_labels(data.trips, CATS)
    frame, small = drop_small_combinations(frame, min_size=50)
    edges = bin_edges(frame[TARGET].to_numpy(), n_bins=20, method="quantile")
    frame = quantize(frame, target=TARGET, edges=edges)
    hist = combination_histograms(frame, n_bins=edges.size - 1)
    clusterer = DistributionClusterer(n_clusters=None, k_min=2, k_max=8, random_state=0).fit(
        hist.matrix
    )
    labels = pl.DataFrame({"comb": hist.combinations, "cluster": clusterer.labels_})
    rows = frame.join(labels, on="comb", how="left")
    profiles = cluster_profiles(rows, target=TARGET, cluster="cluster", edges=edges)
    split = np.random.default_rng(0).random(rows.height) < 0.25
    train, test = rows.filter(~pl.Series(split)), rows.filter(pl.Series(split))
    model = PatternClassifier(CATS, random_state=0).fit(train, train["cluster"].to_numpy())
    truth = combination_labels(data.truth, CATS).select("comb", "shape", "shape_name")
    return Chain(
        rows=rows,
        truth=truth,
        dropped_rows=small.n_rows_dropped,
        dropped_combinations=small.n_combinations_dropped,
        edges=edges,
        combinations=hist.combinations,
        clusterer=clusterer,
        profiles=profiles,
        model=model,
        test=test,
    )


def test_min_size_filter_drops_the_rare_route(chain: Chain) -> None:
    assert chain.dropped_combinations == 12  # RX x 4 hour bands x 3 vehicle types
    assert 0 < chain.dropped_rows < 200
    assert len(chain.combinations) == 96 >= 60
    assert not chain.rows["route"].is_in(["RX"]).any()


def test_k3_chosen_and_shapes_recovered(chain: Chain) -> None:
    assert chain.clusterer.n_clusters_ == 3
    assert chain.clusterer.k_choice_ is not None and chain.clusterer.k_choice_.k == 3
    found = pl.DataFrame({"comb": chain.combinations, "cluster": chain.clusterer.labels_})
    both = found.join(chain.truth, on="comb")
    assert both.height == 96
    assert adjusted_rand_score(both["shape"], both["cluster"]) >= 0.9
    # ids ordered by median: fast (12) < bimodal (~36 median) vs slow (~31 median)
    names = dict(both.group_by("cluster").agg(pl.col("shape_name").mode().first()).iter_rows())
    assert names[0] == "fast & tight"


def test_profiles_show_the_planted_shapes(chain: Chain) -> None:
    prof = chain.profiles
    assert prof["cluster"].to_list() == [0, 1, 2]
    assert int(prof["n_combinations"].sum()) == 96
    assert int(prof["n_rows"].sum()) == chain.rows.height
    by_intervals = dict(zip(prof["cluster"], prof["n_hdr_intervals_90"], strict=True))
    found = pl.DataFrame({"comb": chain.combinations, "cluster": chain.clusterer.labels_})
    bimodal = (
        found.join(chain.truth, on="comb")
        .filter(pl.col("shape_name") == "bimodal")["cluster"]
        .mode()[0]
    )
    assert by_intervals[bimodal] == 2
    assert sum(v == 1 for v in by_intervals.values()) == 2
    fast = prof.row(0, named=True)
    assert 11 < fast["median"] < 13 and fast["p95"] < 16
    (lo1, hi1), (lo2, hi2) = prof.filter(pl.col("cluster") == bimodal)["hdr_90"][0].to_list()
    assert lo1 < 15 < hi1 < 30 < lo2 < 45 < hi2
    sentence = describe_profile(prof.row(bimodal, named=True), unit="min", noun="trips")
    assert sentence.startswith(f"Cluster {bimodal}: bimodal, 90% of trips fall in ")
    for row in prof.iter_rows(named=True):
        assert sum(row["mean_histogram"]) == pytest.approx(1.0)


def test_classifier_predicts_the_pattern(chain: Chain) -> None:
    proba = chain.model.predict_proba(chain.test)
    m = classification_metrics(chain.test["cluster"].to_numpy(), proba, chain.model.classes_)
    assert m.auroc_weighted is not None and m.auroc_weighted >= 0.9
    assert m.accuracy >= 0.9
    assert len(m.confusion) == 3


def test_stream_equals_batch_bitwise_for_50_rows(chain: Chain) -> None:
    rows = chain.test[:50]
    batch = chain.model.predict_proba(rows)
    for i, instance in enumerate(rows.select(CATS).iter_rows(named=True)):
        proba, unknown = chain.model.predict_proba_one(instance)
        assert unknown == []
        assert np.array_equal(proba, batch[i]), instance


def test_unknown_category_gets_probabilities_and_is_listed(chain: Chain) -> None:
    proba, unknown = chain.model.predict_proba_one(
        {"route": "R77", "hour_band": "night", "vehicle_type": "tram", "weekday": "Mon"}
    )
    assert unknown == ["route"]
    assert proba.shape == (3,) and float(proba.sum()) == pytest.approx(1.0, abs=1e-6)
    # the tram at night is always fast & tight, whatever the route: still cluster 0
    assert int(proba.argmax()) == 0


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


def test_plots_render(chain: Chain) -> None:
    choice = chain.clusterer.k_choice_
    assert choice is not None
    instance = chain.test.row(0, named=True)
    proba, _ = chain.model.predict_proba_one(instance)
    row = chain.profiles.row(int(proba.argmax()), named=True)
    answer = {
        **row,
        "prediction": {
            **row,
            "edges": chain.edges.tolist(),
            "probabilities": row["mean_histogram"],
        },
    }
    figs = [
        plot_initial_distributions(chain.rows, target=TARGET, categorical=CATS),
        plot_k_curve(choice.curve, choice.k),
        plot_cluster_profiles(chain.profiles, chain.edges),
        plot_confusion_matrix([[5, 1, 0], [0, 4, 0], [0, 0, 3]], [0, 1, 2]),
        plot_instance(instance[TARGET], answer, proba, chain.model.classes_.tolist(), title="trip"),
        plot_instance(None, answer, proba, [0, 1, 2], title="no value"),
    ]
    for fig in figs:
        assert _png(fig).startswith(b"\x89PNG")
    assert len(figs[2].axes) == 3
    assert len(figs[0].axes) == 6 and sum(ax.get_visible() for ax in figs[0].axes) == 4


def test_instance_plot_shows_attributes_flags_and_unit() -> None:
    pred = {
        "edges": [0.0, 10.0, 20.0, 30.0],
        "probabilities": [0.2, 0.7, 0.1],
        "hdr_50": [[10.0, 17.0]],
        "hdr_90": [[4.0, 21.0]],
    }
    answer = {"cluster": 1, "prediction": pred, "unknown": ["route"]}
    fig = plot_instance(
        28.0,
        answer,
        [0.3, 0.7],
        [0, 1],
        title="trip 9",
        attributes={"route": "R99", "hour_band": "night"},
        target="duration_min",
        unit="min",
    )
    ax = fig.axes[0]
    assert "route=R99 (unknown)" in ax.get_title() and "hour_band=night" in ax.get_title()
    assert "unknown level(s): route" in ax.get_title()
    assert ax.get_xlabel() == "duration_min (min)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "instance (28): outside the 90% HDR" in legend
    inside = plot_instance(15.0, {**answer, "unknown": []}, [0.3, 0.7], [0, 1], title="t")
    assert not any("outside" in t.get_text() for t in inside.axes[0].get_legend().get_texts())


def test_each_pattern_panel_has_its_own_range() -> None:
    """Issue 21: a tight pattern is drawn on its own axis, not one bar wide beside a wide one."""
    rng = np.random.default_rng(0)
    tight, wide = rng.lognormal(np.log(12), 0.05, 2000), 8 + rng.gamma(2.0, 13.5, 2000)
    prof = pl.DataFrame(
        {
            "cluster": [0, 1],
            "n_combinations": [10, 12],
            "n_rows": [2000, 2000],
            "mean_histogram": [[0.5, 0.5], [0.5, 0.5]],
            "median": [12.0, 30.0],
            "hdr_50": [[[11.6, 12.4]], [[18.0, 36.0]]],
            "hdr_90": [[[11.0, 13.0]], [[10.0, 70.0]]],
        }
    )
    fig = plot_cluster_profiles(prof, values={0: tight, 1: wide}, xlabel="duration_min (min)")
    (lo0, hi0), (lo1, hi1) = (ax.get_xlim() for ax in fig.axes)
    assert lo0 <= 11.0 and hi0 >= 13.0 and hi0 - lo0 < 6  # the tight one fills its panel
    assert lo1 <= 10.0 and hi1 >= 70.0
    assert (hi0 - lo0) < 0.1 * (hi1 - lo1)
    assert [ax.get_xlabel() for ax in fig.axes] == ["duration_min (min)"] * 2
    assert _png(fig).startswith(b"\x89PNG")
